package ckpt

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func segmentFiles(t *testing.T, s *Store) []string {
	t.Helper()
	entries, err := os.ReadDir(s.segs.dir)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		out = append(out, e.Name())
	}
	return out
}

// TestOpenTruncatesSegment: what a crash left past a segment's committed
// length (values of a capture that never committed) is cut off at Open.
func TestOpenTruncatesSegment(t *testing.T) {
	cfg := testConfig(t)
	s := openTest(t, cfg)
	k := Key{Job: "torn"}
	_, mem := twoEpochs(t, s, k)
	before := storeDigest(t, s)
	s.Close()
	path := filepath.Join(cfg.Path+".seg", "000001")
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.Write(bytes.Repeat([]byte("torn value"), 1000))
	f.Close()
	// A segment created for a capture that never committed.
	os.WriteFile(filepath.Join(cfg.Path+".seg", "000002"), []byte("orphan"), 0o600)

	s = openTest(t, cfg)
	if storeDigest(t, s) != before {
		t.Fatal("Open did not cut the segment back to its committed length")
	}
	if got := segmentFiles(t, s); len(got) != 1 {
		t.Fatalf("segment files %v, want only 000001", got)
	}
	m, _, err := s.Latest(k, testBinding)
	if err != nil || !bytes.Equal(readBack(t, s, m), mem) {
		t.Fatalf("Latest = %v, %v", m, err)
	}
	// Captures append after the committed values.
	mem[5] ^= 1
	capture(t, s, testMeta(k, 3), mem)
	if m, _, err := s.Latest(k, testBinding); err != nil || m.Epoch != 3 || !bytes.Equal(readBack(t, s, m), mem) {
		t.Fatalf("Latest after reopening = %v, %v", m, err)
	}
	checkRefs(t, s)
}

// TestSegmentRoll: captures move on to a new segment once the current one
// is past segmentMax, and a segment whose values are all dropped is
// deleted; the last one stays to be appended to.
func TestSegmentRoll(t *testing.T) {
	defer func(n int64) { segmentMax = n }(segmentMax)
	segmentMax = 64 << 10
	cfg := testConfig(t)
	cfg.Keep = 1
	s := openTest(t, cfg)
	k := Key{Job: "roll"}
	mem := genMemory(128<<10, 22)
	for e := uint64(1); e <= 4; e++ {
		fillRandom(mem, rand.New(rand.NewPCG(e, 22))) // every chunk changes
		capture(t, s, testMeta(k, e), mem)
		checkRefs(t, s)
	}
	if got := segmentFiles(t, s); len(got) != 1 || got[0] != "000004" {
		t.Fatalf("segment files %v, want only 000004", got)
	}
	m, _, err := s.Latest(k, testBinding)
	if err != nil || !bytes.Equal(readBack(t, s, m), mem) {
		t.Fatalf("Latest = %v, %v", m, err)
	}
	if err := s.Delete(k); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s = openTest(t, cfg)
	if got := segmentFiles(t, s); len(got) != 0 {
		t.Fatalf("segment files %v after Delete and Open, want none", got)
	}
	if n := bucketLen(t, s, bucketSegments); n != 0 {
		t.Fatalf("%d segment entries left", n)
	}
}

// TestSegmentWriteError: a real write error names the segment file.
func TestSegmentWriteError(t *testing.T) {
	s := openTest(t, testConfig(t))
	k := Key{Job: "ro"}
	mem := genMemory(256<<10, 24)
	capture(t, s, testMeta(k, 1), mem)
	// Swap the current segment for a read-only handle on it.
	ro, err := os.Open(s.segs.curFile.Name())
	if err != nil {
		t.Fatal(err)
	}
	rw := s.segs.curFile
	s.segs.curFile = ro
	defer func() { s.segs.curFile = rw; ro.Close() }()
	fillRandom(mem, nil2rand())
	p, err := s.Capture(testMeta(k, 2), mem)
	if err != nil {
		t.Fatal(err)
	}
	err = p.Wait()
	if err == nil || !strings.Contains(err.Error(), "not written: write segment "+s.segs.dir) || strings.Contains(err.Error(), "\n") {
		t.Fatalf("Err = %v", err)
	}
}

// TestSegmentReusesSpace: values freed in the current segment make room
// for later ones, so a store that keeps one epoch of memory rewritten in
// full each time does not grow; a failed capture gives back the room it
// took.
func TestSegmentReusesSpace(t *testing.T) {
	cfg := testConfig(t)
	cfg.Keep = 1
	s := openTest(t, cfg)
	k := Key{Job: "reuse"}
	mem := make([]byte, 256<<10)
	var epochBytes int64
	for e := uint64(1); e <= 8; e++ {
		fillRandom(mem, rand.New(rand.NewPCG(e, 25)))
		if e == 5 { // fails after writing into the spare ranges
			setFailpoint(func(n string) error {
				if n == "commit:manifest" {
					return errors.New("injected")
				}
				return nil
			})
			p, err := s.Capture(testMeta(k, e), mem)
			if err != nil {
				t.Fatal(err)
			}
			if err := p.Wait(); err == nil {
				t.Fatal("capture did not fail")
			}
			setFailpoint(nil)
			checkRefs(t, s)
		}
		st := capture(t, s, testMeta(k, e), mem)
		epochBytes = max(epochBytes, st.BytesStored)
		m, _, err := s.Latest(k, testBinding)
		if err != nil || m.Epoch != e || !bytes.Equal(readBack(t, s, m), mem) {
			t.Fatalf("epoch %d: Latest = %v, %v", e, m, err)
		}
		checkRefs(t, s)
	}
	fi, err := s.segs.curFile.Stat()
	if err != nil {
		t.Fatal(err)
	}
	if fi.Size() > 2*epochBytes {
		t.Fatalf("segment is %d bytes for epochs of %d", fi.Size(), epochBytes)
	}
	s.Close()
	s = openTest(t, cfg)
	checkRefs(t, s)
	if len(s.segs.spare) == 0 {
		t.Fatal("Open found no spare ranges")
	}
}

// An index entry whose value is absurdly large or far is refused as
// corrupt, in one line, without an attempt to allocate or read it.
func TestCorruptIndexEntry(t *testing.T) {
	s := openTest(t, testConfig(t))
	k := Key{Job: "idx"}
	mem := genMemory(256<<10, 5) // four 64 KiB regions, not all zero
	capture(t, s, testMeta(k, 1), mem)
	m, err := s.Manifest(k, 1)
	if err != nil {
		t.Fatal(err)
	}
	var h Hash
	for _, c := range m.Chunks {
		if c != (Hash{}) {
			h = c
			break
		}
	}
	for _, huge := range []struct{ size, off uint64 }{{1 << 62, 0}, {100, 1<<63 - 10}} {
		mutateValue(t, s, bucketRefs, h[:], func(v []byte) []byte {
			r, ok := decodeRef(v)
			if !ok || r.seg == 0 {
				t.Fatalf("chunk %x is not in a segment", h)
			}
			r.size, r.off = huge.size, huge.off
			return encodeRef(r)
		})
		err := s.ReadMemory(m, make([]byte, m.MemSize))
		if !errors.Is(err, ErrCorrupt) || strings.Contains(err.Error(), "\n") {
			t.Fatalf("size %d at %d: %v", huge.size, huge.off, err)
		}
	}
}
