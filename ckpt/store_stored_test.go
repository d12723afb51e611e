package ckpt

import (
	"bytes"
	"testing"

	bolt "go.etcd.io/bbolt"
)

// storedOf sums the stored sizes of m's distinct chunks from the index.
func storedOf(t *testing.T, s *Store, m *Manifest) uint64 {
	t.Helper()
	var sum uint64
	err := s.db.View(func(tx *bolt.Tx) error {
		seen := map[Hash]bool{}
		for _, hs := range [][]Hash{m.Chunks, m.FileChunks} {
			for _, h := range hs {
				if h.IsZero() || seen[h] {
					continue
				}
				seen[h] = true
				r, ok := decodeRef(tx.Bucket(bucketRefs).Get(h[:]))
				if !ok {
					t.Fatalf("epoch %d: chunk %s has no reference", m.Epoch, h)
				}
				sum += r.size
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return sum
}

// TestStoredBytes: a manifest's StoredBytes, worked out from its base's,
// equals the sum over its distinct chunks through changes, duplicates,
// chunks going back to older contents, chunked files and a base dropped
// by DeleteAfter.
func TestStoredBytes(t *testing.T) {
	cfg := testConfig(t)
	cfg.Keep = 2
	s := openTest(t, cfg)
	c := cs(s)
	k := Key{Job: "stored"}
	mem := genMemory(64*c, 5)
	orig := bytes.Clone(mem)
	files := genMemory(filesInlineMax+3*c, 6)
	steps := []func(){
		func() {},
		func() { mem[3*c] ^= 1 }, // one chunk changes
		func() { copy(mem[5*c:6*c], mem[7*c:8*c]) },       // a duplicate of another chunk
		func() { mem[3*c] ^= 1 },                          // back to the contents of epoch 1
		func() { clear(mem[9*c : 10*c]) },                 // a chunk becomes zero
		func() { copy(mem, orig); files[c] ^= 1 },         // everything back, files change
		func() { mem = append(mem, orig[:4*c]...) },       // memory grows
		func() { fillRandom(mem[20*c:30*c], nil2rand()) }, // many chunks change
	}
	epoch := uint64(0)
	for i, step := range steps {
		step()
		epoch++
		meta := testMeta(k, epoch)
		meta.Files = files
		capture(t, s, meta, mem)
		m, err := s.Manifest(k, epoch)
		if err != nil {
			t.Fatal(err)
		}
		if want := storedOf(t, s, m); m.StoredBytes != want {
			t.Fatalf("step %d: StoredBytes %d, chunks hold %d", i, m.StoredBytes, want)
		}
		if i == 4 {
			// Drop the newest epoch: the next capture compares against
			// epoch 3 again, reloaded from the store.
			if err := s.DeleteAfter(k, epoch-1); err != nil {
				t.Fatal(err)
			}
		}
	}
}
