package host

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/librahost/librahost/ckpt"
	"github.com/tetratelabs/wazero/sys"
)

// storedSave puts s's memory in a new store and returns it with the
// manifest.
func storedSave(t *testing.T, s *saved) (*ckpt.Store, *ckpt.Manifest) {
	t.Helper()
	store, err := ckpt.Open(ckpt.Config{Path: filepath.Join(t.TempDir(), "ckpt.db"), NoSync: true, ScrubBytes: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	key := ckpt.Key{Job: "lazy"}
	p, err := store.Capture(ckpt.Meta{Key: key, Epoch: 1, Globals: s.globals, Host: s.host}, s.mem)
	if err == nil {
		err = p.Wait()
	}
	if err != nil {
		t.Fatal(err)
	}
	m, err := store.Manifest(key, 1)
	if err != nil {
		t.Fatal(err)
	}
	return store, m
}

// lazyState is the State of a lazy restore of m, telling resident when
// every chunk is in.
func lazyStateOf(t *testing.T, store *ckpt.Store, m *ckpt.Manifest, resident chan<- time.Duration) *State {
	t.Helper()
	srcs, err := store.MemorySources(m)
	if err != nil {
		t.Fatal(err)
	}
	return &State{
		MemSize:    m.MemSize,
		ReadMemory: func(dst []byte) error { return store.ReadMemory(m, dst) },
		Globals:    m.Globals,
		Host:       m.Host,
		Lazy: &LazyMemory{
			ChunkSize: int(m.ChunkSize), Chunks: srcs, SegmentPath: store.SegmentPath,
			ChunkErr:   func(i int) error { return store.ChunkErr(m, i) },
			OnResident: func(d time.Duration, _ LazyFiller) { resident <- d },
		},
	}
}

// lazyIndexedOf is lazyStateOf with the chunks' places found by the
// filler as it fills them, in a pinned snapshot of the index; released
// is closed once the restore released it.
func lazyIndexedOf(t *testing.T, store *ckpt.Store, m *ckpt.Manifest, resident chan<- time.Duration) (st *State, released <-chan struct{}) {
	t.Helper()
	st = lazyStateOf(t, store, m, resident)
	pin, err := store.PinIndex(m)
	if err == nil && pin == nil {
		// A small guest's chunks fit in a refs bucket kept inline, which
		// is not pinned: another key's make it a tree of its own.
		other := make([]byte, 64*int(m.ChunkSize))
		r := rand.New(rand.NewPCG(1, 2))
		for i := 0; i < len(other); i += 8 {
			binary.LittleEndian.PutUint64(other[i:], r.Uint64())
		}
		var p *ckpt.Pending
		if p, err = store.Capture(ckpt.Meta{Key: ckpt.Key{Job: "other"}, Epoch: 1}, other); err == nil {
			err = p.Wait()
		}
		if err == nil {
			pin, err = store.PinIndex(m)
		}
	}
	if err != nil || pin == nil {
		t.Fatalf("index not pinned: %v", err)
	}
	t.Cleanup(pin.Release)
	rel := make(chan struct{})
	var once sync.Once
	st.Lazy.Chunks, st.Lazy.Index, st.Lazy.Hashes = nil, &pin.Snapshot, m.Chunks
	st.Lazy.Release = func() { once.Do(func() { pin.Release(); close(rel) }) }
	return st, rel
}

// TestLazyRestore: a lazy restore's memory, once resident, is the
// checkpoint's byte for byte, and the guest restored lazily prints what
// the uninterrupted run printed after the checkpoint; so with the places
// of the chunks found by the filler as it goes (indexed), which releases
// the index once the memory is in.
func TestLazyRestore(t *testing.T) {
	if err := LazyRestoreSupported(); err != nil {
		t.Fatalf("lazy restore needs userfaultfd here: %v", err)
	}
	for _, tc := range countGuests {
		t.Run(tc.name, func(t *testing.T) {
			module := testGuest(t, tc.src)
			args := []string{"count", "700"}
			full, s := runCapturing(t, module, args, 100)
			store, m := storedSave(t, s)

			ctx := context.Background()
			w, err := NewWorker(ctx, Config{Module: module, Args: args})
			if err != nil {
				t.Fatal(err)
			}
			resident := make(chan time.Duration, 1)
			st, released := lazyIndexedOf(t, store, m, resident)
			if err := w.Restore(st); err != nil {
				t.Fatal(err)
			}
			if ok, why := w.LazyRestore(); !ok {
				t.Fatalf("restored eagerly: %v", why)
			}
			<-resident
			<-released
			got, _ := w.mod.Memory().Read(0, w.mod.Memory().Size())
			if !bytes.Equal(got, s.mem) {
				t.Fatal("memory restored lazily (indexed) differs from the checkpoint's")
			}
			w.Close(ctx)

			indexed, _ := lazyIndexedOf(t, store, m, make(chan time.Duration, 1))
			for name, st := range map[string]*State{"up-front": lazyStateOf(t, store, m, make(chan time.Duration, 1)), "indexed": indexed} {
				out, err := restoreRun(t, module, args, st)
				if err != nil {
					t.Fatal(err)
				}
				if want := full[s.outPos:]; !bytes.Equal(out, want) {
					t.Fatalf("restored lazily (%s), the run printed\n%s\nwant\n%s", name, out, want)
				}
			}
		})
	}
}

// damagedLazy is a checkpoint of the count guest whose chunk holding the
// asyncify buffer (which the rewind reads first) is damaged on disk, in
// its store, and the error the up-front check gives for it.
func damagedLazy(t *testing.T) (module []byte, args []string, store *ckpt.Store, m *ckpt.Manifest, want error) {
	t.Helper()
	module = testGuest(t, "testdata/count.c")
	args = []string{"count", "700"}
	_, s := runCapturing(t, module, args, 100)
	store, m = storedSave(t, s)
	var hs hostState
	if err := json.Unmarshal(s.host, &hs); err != nil || hs.AsyncBuf == 0 {
		t.Fatalf("no asyncify buffer in the host state (%v)", err)
	}
	bad := int(uint64(hs.AsyncBuf) / uint64(m.ChunkSize))
	srcs, err := store.MemorySources(m)
	if err != nil {
		t.Fatal(err)
	}
	damaged := false
	for _, src := range srcs {
		if int(src.Index) != bad || src.Seg == 0 {
			continue
		}
		f, err := os.OpenFile(store.SegmentPath(src.Seg), os.O_RDWR, 0)
		if err != nil {
			t.Fatal(err)
		}
		var b [1]byte
		f.ReadAt(b[:], int64(src.Off+src.Size/2))
		b[0] ^= 0x5a
		f.WriteAt(b[:], int64(src.Off+src.Size/2))
		f.Close()
		damaged = true
	}
	if !damaged {
		t.Fatalf("chunk %d (the asyncify buffer) is not in a segment", bad)
	}
	if want = store.Verify(m); want == nil {
		t.Fatal("the up-front check passes a damaged chunk")
	}
	return module, args, store, m, want
}

// TestLazyRestoreDamaged: a chunk damaged on disk that the guest needs at
// once ends the run with the error the up-front check gives, and nothing
// is printed.
func TestLazyRestoreDamaged(t *testing.T) {
	module, args, store, m, want := damagedLazy(t)
	indexed, released := lazyIndexedOf(t, store, m, make(chan time.Duration, 1))
	for name, st := range map[string]*State{"up-front": lazyStateOf(t, store, m, make(chan time.Duration, 1)), "indexed": indexed} {
		out, err := restoreRun(t, module, args, st)
		if err == nil || err.Error() != want.Error() || !errors.Is(err, ckpt.ErrCorrupt) || strings.Contains(err.Error(), "\n") {
			t.Fatalf("run restored lazily (%s) from a damaged chunk: %v, want %v", name, err, want)
		}
		if len(out) > 0 {
			t.Fatalf("the guest printed %q from a damaged memory (%s)", out, name)
		}
	}
	<-released
}

// TestLazyDamagedSendsNothing: a rank let past a chunk that did not read
// back (zeros) ends at its send rather than carry those zeros to another
// rank.
func TestLazyDamagedSendsNothing(t *testing.T) {
	module, args, store, m, want := damagedLazy(t)
	ctx := context.Background()
	ep := floodEndpoint(t, "a", 1<<20)
	w, err := NewWorker(ctx, Config{Module: module, Args: args, Rank: 0, Size: 2, Endpoint: ep})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close(ctx)
	if err := w.Restore(lazyStateOf(t, store, m, make(chan time.Duration, 1))); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Run(ctx); err == nil || err.Error() != want.Error() {
		t.Fatalf("run restored lazily from a damaged chunk: %v, want %v", err, want)
	}
	// The guest's send, called as the import calls it.
	send := func() (r uint32, ended any) {
		defer func() { ended = recover() }()
		return w.send(w.mod, 1, 0, 0, 8), nil
	}
	r, ended := send()
	if ee, ok := ended.(*sys.ExitError); !ok || ee.ExitCode() != sys.ExitCodeContextCanceled {
		t.Fatalf("a guest let past a damaged chunk went on at its send (result %d, %v): it would carry the zeros to another rank", r, ended)
	}
}

// TestLazyCaptureStops: a guest whose capture waits for a fill that does
// not come (the background reader held after one chunk, the guest having
// touched few of the 256 chunks of its 16 MiB heap) ends when its run is
// cancelled, as a job that ends or rolls back stops its ranks, rather
// than wait for every chunk.
func TestLazyCaptureStops(t *testing.T) {
	module := testGuest(t, "testdata/mem")
	args := []string{"mem", "16", "1", "3", "ckpt"} // a checkpoint after each round
	_, s := runCapturing(t, module, args, len("ready\n"))
	store, m := storedSave(t, s)
	t.Setenv("LIBRAHOST_LAZY_HOLD", "1:"+filepath.Join(t.TempDir(), "never"))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	w, err := NewWorker(ctx, Config{Module: module, Args: args, OnPause: func(*Capture) error {
		t.Error("a checkpoint was taken before the memory was in")
		return nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close(context.Background())
	if err := w.Restore(lazyStateOf(t, store, m, make(chan time.Duration, 1))); err != nil {
		t.Fatal(err)
	}
	if ok, why := w.LazyRestore(); !ok {
		t.Fatalf("restored eagerly: %v", why)
	}
	w.RequestCheckpoint()
	ran := make(chan error, 1)
	go func() { _, err := w.Run(ctx); ran <- err }()
	// The capture clears pending as it begins, then waits for the fill.
	for w.pending.Load() {
		select {
		case err := <-ran:
			t.Fatalf("the run ended (%v) before its capture", err)
		case <-time.After(time.Millisecond):
		}
	}
	cancel()
	select {
	case err := <-ran:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("a run cancelled while its capture waited for the fill: %v", err)
		}
	case <-time.After(2 * time.Minute): // only ends a hang
		t.Fatal("a capture waiting for a held fill did not stop when its run was cancelled")
	}
}

// TestLazyDamagedWakesWaiter: a guest waiting for a message (the host's
// wait of a Go guest) when its fill finds a damaged chunk is woken and
// stopped, so that its run ends in the store's words rather than wait
// for a message another rank may never send.
func TestLazyDamagedWakesWaiter(t *testing.T) {
	module, args, store, m, _ := damagedLazy(t)
	ctx := context.Background()
	w, err := NewWorker(ctx, Config{Module: module, Args: args})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close(ctx)
	if err := w.Restore(lazyStateOf(t, store, m, make(chan time.Duration, 1))); err != nil {
		t.Fatal(err)
	}
	woken := make(chan error, 1)
	go func() { woken <- w.wait(ctx) }()
	select {
	case err := <-woken:
		if err != nil || !w.stopped.Load() || !w.lazyFailed() {
			t.Fatalf("woken (%v), stopped %v, fill failed %v: want stopped by the failed fill", err, w.stopped.Load(), w.lazyFailed())
		}
	case <-time.After(2 * time.Minute): // only ends a hang
		t.Fatal("a guest waiting for a message was not woken when its fill found a damaged chunk")
	}
}
