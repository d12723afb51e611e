package ckpt

import (
	"bytes"
	"os"
	"strings"
	"testing"
)

// TestPlaceReader: in a pinned snapshot of an index deep enough to have
// branch pages, a PlaceReader finds every chunk where MemorySources does,
// and the values there give the memory back, though the store is written
// meanwhile (other keys captured and deleted, which frees and reuses
// index pages); a chunk missing from the snapshot is refused in one line;
// a store closed with a pin left does not wait for it.
func TestPlaceReader(t *testing.T) {
	s := openTest(t, testConfig(t))
	capture := func(k Key, e uint64, mem []byte) *Manifest {
		t.Helper()
		capture(t, s, testMeta(k, e), mem)
		m, err := s.Manifest(k, e)
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	k := Key{Job: "j"}
	mem := genMemory(4<<20, 7)
	m := capture(k, 1, mem)
	for w := uint32(1); w <= 2; w++ {
		capture(Key{Job: "j", Worker: w}, 1, genMemory(2<<20, uint64(w)))
	}
	want, err := s.MemorySources(m)
	if err != nil {
		t.Fatal(err)
	}
	pin, err := s.PinIndex(m)
	if err != nil || pin == nil {
		t.Fatalf("pin: %v, %v", pin, err)
	}
	defer pin.Release()

	// Written after the pin: another key's epochs come and go.
	for e := uint64(1); e <= 4; e++ {
		capture(Key{Job: "other"}, e, genMemory(2<<20, 100+e))
	}
	if err := s.Delete(Key{Job: "j", Worker: 1}); err != nil {
		t.Fatal(err)
	}

	r, err := OpenPlaces(pin.Snapshot)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	dec, err := NewValueDecoder(int(m.ChunkSize))
	if err != nil {
		t.Fatal(err)
	}
	defer dec.Close()
	got := make([]byte, m.MemSize)
	for _, w := range want {
		src, err := r.Find(w.Index, w.Hash)
		if err != nil {
			t.Fatalf("chunk %d: %v", w.Index, err)
		}
		if src.Seg != w.Seg || src.Off != w.Off || src.Size != w.Size || src.Hash != w.Hash || src.Index != w.Index {
			t.Fatalf("chunk %d found at %+v, MemorySources says %+v", w.Index, src, w)
		}
		decodeSource(t, dec, SegmentFile(pin.Snapshot.SegDir, src.Seg), src, got, int(m.ChunkSize))
	}
	if !bytes.Equal(got, mem) {
		t.Fatal("the places found give another memory back")
	}
	if r.branches == 0 {
		t.Fatal("the refs bucket has no branch page: the test does not descend")
	}
	var gone Hash
	gone[0] = 1
	if _, err := r.Find(0, gone); err == nil || !strings.Contains(err.Error(), "missing from the index") || strings.Contains(err.Error(), "\n") {
		t.Fatalf("a chunk not in the index: %v", err)
	}

	// A pin left open: Close releases it.
	if _, err := s.PinIndex(m); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestPinIndexInline: an index whose refs bucket is inline, or that
// holds chunk values itself, is not pinned (MemorySources serves it); a
// manifest whose chunk list does not match its size is refused.
func TestPinIndexInline(t *testing.T) {
	s := openTest(t, testConfig(t))
	k := Key{Job: "j"}
	capture(t, s, testMeta(k, 1), genMemory(16<<10, 1))
	m, err := s.Manifest(k, 1)
	if err != nil {
		t.Fatal(err)
	}
	if pin, err := s.PinIndex(m); pin != nil || err != nil {
		t.Fatalf("an inline refs bucket pinned: %v, %v", pin, err)
	}
	bad := *m
	bad.Chunks = bad.Chunks[1:]
	if _, err := s.PinIndex(&bad); err == nil {
		t.Fatal("a manifest one chunk short pinned")
	}
	// Many chunks, with their values in the chunks bucket.
	capture(t, s, testMeta(k, 2), genMemory(1<<20, 2))
	if m, err = s.Manifest(k, 2); err != nil {
		t.Fatal(err)
	}
	if pin, err := s.PinIndex(m); pin == nil || err != nil {
		t.Fatalf("an index of many chunks not pinned: %v", err)
	} else {
		pin.Release()
	}
	if toBoltValues(t, s) == 0 {
		t.Fatal("no value moved into the index")
	}
	if pin, err := s.PinIndex(m); pin != nil || err != nil {
		t.Fatalf("an index holding chunk values pinned: %v, %v", pin, err)
	}
}

// FuzzBoltSearch: a lookup in any page's bytes neither panics nor finds
// a key that the page does not hold.
func FuzzBoltSearch(f *testing.F) {
	b := fuzzIndex(f)
	for id := 2; (id+1)*4096 <= len(b); id++ {
		f.Add(b[id*4096:(id+1)*4096], []byte("refs"))
	}
	f.Add([]byte{}, []byte{})
	f.Fuzz(func(t *testing.T, page, key []byte) {
		e, found, err := boltSearch(page, key)
		if found && (err != nil || !bytes.Equal(e.key, key)) {
			t.Fatalf("found %q for %q (%v)", e.key, key, err)
		}
	})
}

// decodeSource reads the value at src, in the segment file path or in
// src itself, and decodes it into its chunk of mem (chunks of cs bytes).
func decodeSource(t *testing.T, dec *ValueDecoder, path string, src ChunkSource, mem []byte, cs int) {
	t.Helper()
	v := src.Value
	if src.Seg != 0 {
		v = make([]byte, src.Size)
		f, err := os.Open(path)
		if err == nil {
			_, err = f.ReadAt(v, int64(src.Off))
			f.Close()
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	off := int(src.Index) * cs
	if err := dec.Decode(v, mem[off:off+cs], src.Hash); err != nil {
		t.Fatalf("chunk %d: %v", src.Index, err)
	}
}
