package ckpt

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestRoundTrip(t *testing.T) {
	tests := []struct {
		name      string
		chunkSize int
		memSize   int
		files     int
		asyncify  []byte
	}{
		{"small chunks", 4 << 10, 1 << 20, 0, nil},
		{"default chunks", 0, 2 << 20, 100, []byte{}},
		{"partial last chunk", 4 << 10, 3*(4<<10) + 100, 0, []byte("unwind")},
		{"empty memory", 4 << 10, 0, 0, nil},
		{"chunked files", 4 << 10, 256 << 10, filesInlineMax + 12345, []byte("unwind")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig(t)
			cfg.ChunkSize = tt.chunkSize
			s := openTest(t, cfg)
			k := Key{Job: "job", Worker: 3}
			mem := genMemory(tt.memSize, 1)
			meta := testMeta(k, 1)
			meta.Asyncify = tt.asyncify
			if tt.files > 0 {
				meta.Files = genMemory(tt.files, 2)
			}
			st := capture(t, s, meta, mem)
			if want := int(chunkCount(uint64(tt.memSize), s.cfg.ChunkSize)); st.Chunks != want {
				t.Errorf("Stats.Chunks = %d, want %d", st.Chunks, want)
			}
			m, err := s.Manifest(k, 1)
			if err != nil {
				t.Fatal(err)
			}
			if got := readBack(t, s, m); !bytes.Equal(got, mem) {
				t.Fatal("memory differs after round trip")
			}
			if !slices.Equal(m.Globals, meta.Globals) || !bytes.Equal(m.Host, meta.Host) || m.Binding != meta.Binding || !m.Created.Equal(meta.Created) {
				t.Errorf("meta differs: %+v", m.Meta)
			}
			if (m.Asyncify == nil) != (tt.asyncify == nil) || !bytes.Equal(m.Asyncify, tt.asyncify) {
				t.Errorf("Asyncify = %q, want %q", m.Asyncify, tt.asyncify)
			}
			files, err := s.ReadFiles(m)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(files, meta.Files) {
				t.Error("files differ after round trip")
			}
			if (m.FileChunks != nil) != (tt.files > filesInlineMax) {
				t.Errorf("files chunked = %v for %d bytes", m.FileChunks != nil, tt.files)
			}
			if err := s.Verify(m); err != nil {
				t.Fatal(err)
			}
			lm, refused, err := s.Latest(k, testBinding)
			if err != nil || len(refused) != 0 || lm.Epoch != 1 {
				t.Fatalf("Latest = %v, %v, %v", lm, refused, err)
			}
		})
	}
}

func TestIncrementalAndZero(t *testing.T) {
	s := openTest(t, testConfig(t))
	k := Key{Job: "inc"}
	cs := s.cfg.ChunkSize
	mem := genMemory(1<<20, 7)
	zero, distinct := 0, map[Hash]bool{}
	for off := 0; off < len(mem); off += cs {
		c := mem[off : off+cs]
		if bytes.Equal(c, s.zero) {
			zero++
		} else {
			distinct[hashOf(c)] = true
		}
	}
	st := capture(t, s, testMeta(k, 1), mem)
	if st.Zero != zero || st.Changed != len(mem)/cs-zero {
		t.Fatalf("first capture: %+v, want %d zero", st, zero)
	}
	if n := valueCount(t, s); n != len(distinct) {
		t.Fatalf("%d chunks stored, want %d distinct non-zero", n, len(distinct))
	}

	tests := []struct {
		name    string
		dirty   []int // chunk indexes to change
		changed int
	}{
		{"unchanged", nil, 0},
		{"three chunks", []int{0, 5, 200}, 3},
		{"same chunk twice", []int{9, 9}, 1},
	}
	epoch := uint64(1)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := valueCount(t, s)
			for i, c := range tt.dirty {
				mem[c*cs+i] ^= 0xa5
				mem[c*cs+cs-1] ^= byte(epoch)
			}
			epoch++
			st := capture(t, s, testMeta(k, epoch), mem)
			if st.Changed != tt.changed || st.BytesCopied != int64(tt.changed*cs) {
				t.Fatalf("Stats = %+v, want %d changed", st, tt.changed)
			}
			if after := valueCount(t, s); after > before+tt.changed {
				t.Fatalf("chunks %d -> %d, want at most %d new", before, after, tt.changed)
			}
			if tt.changed == 0 && st.BytesStored != 0 {
				t.Fatalf("unchanged capture stored %d bytes", st.BytesStored)
			}
			m, err := s.Manifest(k, epoch)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(readBack(t, s, m), mem) {
				t.Fatal("memory differs")
			}
		})
	}
}

func TestKeepAndGC(t *testing.T) {
	for _, keep := range []int{1, 2, 3} {
		t.Run(fmt.Sprint("keep", keep), func(t *testing.T) {
			cfg := testConfig(t)
			cfg.Keep = keep
			s := openTest(t, cfg)
			k := Key{Job: "gc"}
			mem := genMemory(512<<10, 3)
			other := Key{Job: "gc", Worker: 1}
			capture(t, s, testMeta(other, 1), mem) // shares chunks with k's first epoch
			for e := uint64(1); e <= 6; e++ {
				for i := range 10 {
					mem[(int(e)*10+i)*cs(s)] = byte(e) // change 10 chunks per epoch
				}
				capture(t, s, testMeta(k, e), mem)
			}
			infos, err := s.Epochs(k)
			if err != nil {
				t.Fatal(err)
			}
			if len(infos) != keep || infos[len(infos)-1].Epoch != 6 {
				t.Fatalf("epochs kept = %+v", infos)
			}
			checkRefs(t, s)
			for _, in := range infos {
				m, err := s.Manifest(k, in.Epoch)
				if err != nil {
					t.Fatal(err)
				}
				if err := s.Verify(m); err != nil {
					t.Fatal(err)
				}
			}
			if err := s.Delete(k); err != nil {
				t.Fatal(err)
			}
			checkRefs(t, s)
			m, err := s.Manifest(other, 1)
			if err != nil {
				t.Fatal(err)
			}
			if err := s.Verify(m); err != nil {
				t.Fatalf("other key damaged by Delete: %v", err)
			}
			if _, err := s.Epochs(k); !errors.Is(err, ErrNotFound) {
				t.Fatalf("Epochs after Delete: %v", err)
			}
		})
	}
}

func cs(s *Store) int { return s.cfg.ChunkSize }

// checkRefs compares the stored reference counts and chunks with a
// mark-and-sweep over the manifests, and checks that every unreferenced
// value was freed.
func checkRefs(t *testing.T, s *Store) {
	t.Helper()
	s.settle()
	before := storeDigest(t, s)
	chunks, refs := valueCount(t, s), bucketLen(t, s, bucketRefs)
	if chunks != refs {
		t.Fatalf("%d chunks but %d reference counts", chunks, refs)
	}
	if n := deadBytes(t, s); n != 0 {
		t.Fatalf("segments hold %d bytes no reference covers", n)
	}
	if err := s.sweepAll(); err != nil {
		t.Fatal(err)
	}
	if after := storeDigest(t, s); after != before {
		t.Fatalf("a full sweep changed the store: reference counting lost track (%d chunks before, %d after)", chunks, valueCount(t, s))
	}
}

func TestReopenIsIncremental(t *testing.T) {
	cfg := testConfig(t)
	s := openTest(t, cfg)
	k := Key{Job: "re"}
	mem := genMemory(256<<10, 4)
	capture(t, s, testMeta(k, 1), mem)
	s.Close()
	s = openTest(t, cfg)
	mem[0]++
	st := capture(t, s, testMeta(k, 2), mem)
	if st.Changed != 1 {
		t.Fatalf("first capture after reopen changed %d chunks, want 1", st.Changed)
	}
}

func TestConcurrentKeys(t *testing.T) {
	s := openTest(t, testConfig(t))
	var wg sync.WaitGroup
	mems := make([][]byte, 4)
	for w := range mems {
		mems[w] = genMemory(256<<10, uint64(w%2)) // workers 0 and 2 share content
		wg.Add(1)
		go func() {
			defer wg.Done()
			k := Key{Job: "par", Worker: uint32(w)}
			var ps []*Pending
			for e := uint64(1); e <= 4; e++ {
				mems[w][int(e)*cs(s)] ^= byte(w + 1)
				p, err := s.Capture(testMeta(k, e), mems[w])
				if err != nil {
					t.Error(err)
					return
				}
				ps = append(ps, p)
			}
			for _, p := range ps {
				if err := p.Wait(); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	keys, err := s.Keys()
	if err != nil || len(keys) != 4 {
		t.Fatalf("Keys = %v, %v", keys, err)
	}
	for w, k := range keys {
		m, _, err := s.Latest(k, testBinding)
		if err != nil {
			t.Fatal(err)
		}
		if m.Epoch != 4 || !bytes.Equal(readBack(t, s, m), mems[w]) {
			t.Fatalf("worker %d: epoch %d or memory differs", w, m.Epoch)
		}
	}
	checkRefs(t, s)
}

func TestOpenInUse(t *testing.T) {
	cfg := testConfig(t)
	openTest(t, cfg)
	start := time.Now()
	_, err := Open(cfg)
	if !errors.Is(err, ErrInUse) || !strings.Contains(err.Error(), "is in use by another process") {
		t.Fatalf("second Open: %v", err)
	}
	// It waits for the lock before it gives up (no upper bound: a loaded
	// machine may take long; go test's -timeout ends a hang).
	if d := time.Since(start); d < time.Second/2 {
		t.Fatalf("second Open gave up after %v", d)
	}
}

func TestConfigErrors(t *testing.T) {
	for _, cfg := range []Config{{}, {Path: "x", ChunkSize: 1000}, {Path: "x", ChunkSize: 2048}, {Path: "x", Keep: -1}} {
		if _, err := Open(cfg); err == nil || !strings.HasPrefix(err.Error(), "ckpt: ") {
			t.Errorf("Open(%+v) = %v", cfg, err)
		}
	}
}

// TestOverlappingCaptures takes a capture while the previous one of the same
// key is still being written, with Keep 1: the second is compared against
// epoch 1, which the first's commit would drop.
func TestOverlappingCaptures(t *testing.T) {
	cfg := testConfig(t)
	cfg.Keep = 1
	s := openTest(t, cfg)
	k := Key{Job: "overlap"}
	mem1 := genMemory(128<<10, 9)
	capture(t, s, testMeta(k, 1), mem1)

	defer func(b int) { batchBytes = b }(batchBytes)
	batchBytes = 1 // every chunk is an early batch
	release := make(chan struct{})
	blocked := make(chan struct{}, 1)
	setFailpoint(func(name string) error {
		if name == "commit:batch" {
			select {
			case blocked <- struct{}{}:
				<-release
			default:
			}
		}
		return nil
	})
	defer func() { setFailpoint(nil) }()

	mem2 := bytes.Clone(mem1)
	mem2[0] ^= 1
	p2, err := s.Capture(testMeta(k, 2), mem2)
	if err != nil {
		t.Fatal(err)
	}
	<-blocked                                  // epoch 2 is being written (its chunks, before its commit)
	p3, err := s.Capture(testMeta(k, 3), mem1) // back to epoch 1's content
	if err != nil {
		t.Fatal(err)
	}
	close(release)
	if err := p2.Wait(); err != nil {
		t.Fatal(err)
	}
	if err := p3.Wait(); err != nil {
		t.Fatal(err)
	}
	m, _, err := s.Latest(k, testBinding)
	if err != nil || m.Epoch != 3 || !bytes.Equal(readBack(t, s, m), mem1) {
		t.Fatalf("Latest = %v, %v", m, err)
	}
	if infos, _ := s.Epochs(k); len(infos) != 1 {
		t.Fatalf("kept %d epochs, want 1", len(infos))
	}
	checkRefs(t, s)
}

func TestEpochsAndProgress(t *testing.T) {
	s := openTest(t, testConfig(t))
	k := Key{Job: "info", Worker: 4}
	mem := genMemory(512<<10, 12)
	var stats []Stats
	for e := uint64(1); e <= 2; e++ {
		mem[int(e)*cs(s)] ^= 0xff
		p, err := s.Capture(testMeta(k, e), mem)
		if err != nil {
			t.Fatal(err)
		}
		// Zero and unchanged chunks count as processed at once.
		if done, total := p.Progress(); done >= total || total != int64(len(mem)) || done < total-p.Stats().BytesCopied {
			t.Fatalf("Progress = %d/%d, copied %d", done, total, p.Stats().BytesCopied)
		}
		if err := p.Wait(); err != nil {
			t.Fatal(err)
		}
		if done, total := p.Progress(); done != total {
			t.Fatalf("Progress after Wait = %d/%d", done, total)
		}
		st := p.Stats()
		if st.PauseDur <= 0 || st.WriteDur <= 0 || st.BytesStored <= 0 {
			t.Fatalf("Stats = %+v", st)
		}
		stats = append(stats, st)
	}
	infos, err := s.Epochs(k)
	if err != nil || len(infos) != 2 {
		t.Fatalf("Epochs = %v, %v", infos, err)
	}
	total := chunkBytes(t, s)
	for i, in := range infos {
		if in.Epoch != uint64(i+1) || in.NewBytes != uint64(stats[i].BytesStored) || in.Format != FormatVersion ||
			in.MemSize != uint64(len(mem)) || in.Binding != testBinding || in.Created.IsZero() {
			t.Errorf("Info %d = %+v", i, in)
		}
	}
	if infos[1].StoredBytes > total || infos[1].StoredBytes < total-uint64(stats[1].BytesStored)-uint64(cs(s)) {
		t.Errorf("StoredBytes %d, store holds %d", infos[1].StoredBytes, total)
	}
	if infos[1].NewBytes >= infos[0].NewBytes/10 {
		t.Errorf("incremental epoch wrote %d bytes, full one %d", infos[1].NewBytes, infos[0].NewBytes)
	}
}

// TestProgressDuringWrite: progress counts compressed chunks before the
// write is durable, and reaches the total only when it is.
func TestProgressDuringWrite(t *testing.T) {
	s := openTest(t, testConfig(t))
	k := Key{Job: "progress"}
	mem := genMemory(1<<20, 13)
	release := make(chan struct{})
	setFailpoint(func(name string) error {
		if name == "commit:tx" {
			<-release
		}
		return nil
	})
	defer setFailpoint(nil)
	p, err := s.Capture(testMeta(k, 1), mem)
	if err != nil {
		t.Fatal(err)
	}
	zero := int64(p.Stats().Zero * cs(s))
	if done, total := p.Progress(); total != int64(len(mem)) || done < zero || done >= total {
		t.Fatalf("Progress at capture = %d/%d, %d bytes zero", done, total, zero)
	}
	<-p.compressed // every chunk compressed; the commit waits on release
	if done, total := p.Progress(); done != total-1 {
		t.Fatalf("Progress while committing = %d/%d", done, total)
	}
	close(release)
	if err := p.Wait(); err != nil {
		t.Fatal(err)
	}
	if done, total := p.Progress(); done != total {
		t.Fatalf("Progress when durable = %d/%d", done, total)
	}
}

// TestSmallCaptureOneTransaction: a capture whose new chunks are fewer than
// batchBytes is written by its commit alone, with no early batch.
func TestSmallCaptureOneTransaction(t *testing.T) {
	s := openTest(t, testConfig(t))
	k := Key{Job: "small"}
	mem := genMemory(1<<20, 14)
	capture(t, s, testMeta(k, 1), mem)
	var batches, commits atomic.Int32
	setFailpoint(func(name string) error {
		switch name {
		case "commit:batch":
			batches.Add(1)
		case "commit:tx":
			commits.Add(1)
		}
		return nil
	})
	defer setFailpoint(nil)
	for _, c := range []int{3, 50, 200} {
		mem[c*cs(s)] ^= 1
	}
	capture(t, s, testMeta(k, 2), mem)
	if batches.Load() != 0 || commits.Load() != 1 {
		t.Fatalf("%d early batches and %d commits, want 0 and 1", batches.Load(), commits.Load())
	}
}
