package ckpt

import (
	"bytes"
	"errors"
	"path/filepath"
	"testing"

	bolt "go.etcd.io/bbolt"
)

// TestMemorySources: the places MemorySources names, read and decoded
// outside the store, give back each epoch's memory, in a store holding
// several keys and epochs (so its walk of the index skips and seeks); a
// chunk missing from the index refuses the epoch.
func TestMemorySources(t *testing.T) {
	s, err := Open(Config{Path: filepath.Join(t.TempDir(), "ckpt.db"), NoSync: true, ScrubBytes: -1, Keep: 5})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	mems := map[Key][]byte{}
	var mans []*Manifest
	for e := uint64(1); e <= 3; e++ {
		for w := range 3 {
			k := Key{Job: "j", Worker: uint32(w)}
			mem := genMemory(40<<16, e*10+uint64(w))
			if e > 1 && w == 0 {
				mem = bytes.Clone(mems[k]) // mostly the chunks before
				mem[5<<16]++
			}
			mems[k] = mem
			p, err := s.Capture(Meta{Key: k, Epoch: e}, mem)
			if err == nil {
				err = p.Wait()
			}
			if err != nil {
				t.Fatal(err)
			}
			m, err := s.Manifest(k, e)
			if err != nil {
				t.Fatal(err)
			}
			if e == 3 {
				mans = append(mans, m)
			}
		}
	}
	dec, err := NewValueDecoder(s.cfg.ChunkSize)
	if err != nil {
		t.Fatal(err)
	}
	defer dec.Close()
	for _, m := range mans {
		srcs, err := s.MemorySources(m)
		if err != nil {
			t.Fatal(err)
		}
		got := make([]byte, m.MemSize)
		last := -1
		for _, src := range srcs {
			if int(src.Index) <= last || src.Hash != m.Chunks[src.Index] {
				t.Fatalf("source of chunk %d out of order or of another chunk", src.Index)
			}
			last = int(src.Index)
			decodeSource(t, dec, s.SegmentPath(src.Seg), src, got, int(m.ChunkSize))
		}
		if !bytes.Equal(got, mems[m.Key]) {
			t.Fatalf("%v: the sources do not give the memory back", m.Key)
		}
	}
	m := mans[1]
	var gone Hash
	for _, h := range m.Chunks {
		if !h.IsZero() {
			gone = h
		}
	}
	if err := s.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketRefs).Delete(gone[:]) }); err != nil {
		t.Fatal(err)
	}
	if _, err := s.MemorySources(m); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("a chunk missing from the index: %v", err)
	}
}
