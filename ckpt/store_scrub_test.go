package ckpt

import (
	"bytes"
	"slices"
	"testing"

	bolt "go.etcd.io/bbolt"
)

// A damaged value of a chunk every kept epoch shares is found by the
// check after a capture, and the next capture of a memory holding that
// chunk writes it again: every epoch is whole again.
func TestScrubStepHealsSharedChunk(t *testing.T) {
	s := openTest(t, testConfig(t))
	k := Key{Job: "heal"}
	mems := threeEpochs(t, s, k)
	m := mustManifest(t, s, k, 3)
	var shared Hash
	for _, h := range m.Chunks[2:] {
		if !h.IsZero() {
			shared = h
		}
	}
	mutateChunk(t, s, shared, func(v []byte) []byte { v[len(v)/2] ^= 1; return v })
	capture(t, s, testMeta(k, 4), mems[2]) // finds the damage
	capture(t, s, testMeta(k, 5), mems[2]) // writes the chunk again
	res, ok := scrubVerdicts(t, s)
	if res.Damaged != 0 || !ok[0] || !ok[1] || !ok[2] {
		t.Fatalf("after two captures: %d damaged chunks, verdicts %v", res.Damaged, ok)
	}
	for e := uint64(3); e <= 5; e++ {
		if got := readBack(t, s, mustManifest(t, s, k, e)); !bytes.Equal(got, mems[2]) {
			t.Fatalf("epoch %d reads back different memory", e)
		}
	}
}

// ScrubBytes bounds each check: a store larger than it is checked over
// several captures, wrapping around.
func TestScrubStepBounded(t *testing.T) {
	cfg := testConfig(t)
	cfg.ScrubBytes = 8 << 10
	s := openTest(t, cfg)
	k := Key{Job: "heal"}
	mems := threeEpochs(t, s, k)
	var all []Hash
	m := mustManifest(t, s, k, 3)
	for _, h := range m.Chunks {
		if !h.IsZero() {
			all = append(all, h)
		}
	}
	last := slices.MaxFunc(all, func(a, b Hash) int { return bytes.Compare(a[:], b[:]) }) // checked last
	mutateChunk(t, s, last, func(v []byte) []byte { v[len(v)-1] ^= 1; return v })
	captures := 0
	for e := uint64(4); ; e++ {
		capture(t, s, testMeta(k, e), mems[2])
		captures++
		if _, bad := s.badSnapshot()[last]; bad {
			break
		}
		if captures > len(all) {
			t.Fatalf("the damaged chunk was not found after %d captures", captures)
		}
	}
	if captures < 2 {
		t.Fatalf("found after %d capture: the check is not bounded", captures)
	}
}

// BenchmarkScrubStep is the check the writer runs after each durable
// capture: Config.ScrubBytes (32 MiB) of stored values.
func BenchmarkScrubStep(b *testing.B) {
	cfg := testConfig(b)
	cfg.ChunkSize = 64 << 10
	s := openTest(b, cfg)
	capture(b, s, testMeta(Key{Job: "bench"}, 1), genMemory(128<<20, 1))
	b.SetBytes(s.cfg.ScrubBytes)
	for b.Loop() {
		s.gcMu.Lock()
		s.scrubStep(Key{Job: "bench"})
		s.gcMu.Unlock()
	}
}

// A store of several keys smaller than ScrubBytes is checked whole once
// per round of the keys' captures, not after each key's capture, and a
// value damaged after a round is still found within the next round.
func TestScrubStepOncePerRound(t *testing.T) {
	s := openTest(t, testConfig(t))
	keys := []Key{{Job: "round", Worker: 0}, {Job: "round", Worker: 1}, {Job: "round", Worker: 2}}
	mems := make([][]byte, len(keys))
	for i := range keys {
		mems[i] = genMemory(128<<10, uint64(10+i))
	}
	scrubbed := func() int64 {
		s.gcMu.Lock()
		defer s.gcMu.Unlock()
		return s.scrubbed
	}
	round := func(e uint64) (checked, stored int64) {
		before := scrubbed()
		for i, k := range keys {
			mems[i] = bytes.Clone(mems[i])
			mems[i][int(e)*cs(s)] ^= 0x5a // one chunk changes per epoch
			capture(t, s, testMeta(k, e), mems[i])
		}
		return scrubbed() - before, storedValueBytes(t, s)
	}
	round(1)
	for e := uint64(2); e <= 4; e++ {
		checked, stored := round(e)
		if checked > stored {
			t.Fatalf("round %d checked %d bytes of a store of %d: more than once", e, checked, stored)
		}
		if checked == 0 {
			t.Fatalf("round %d checked nothing", e)
		}
	}
	// A value the last key's memory holds, damaged now, is found within
	// the next round of captures, and written again by that key's
	// capture: every epoch is whole.
	m := mustManifest(t, s, keys[2], 4)
	var h Hash
	for _, c := range m.Chunks {
		if !c.IsZero() {
			h = c
		}
	}
	mutateChunk(t, s, h, func(v []byte) []byte { v[len(v)/2] ^= 1; return v })
	round(5)
	if res, ok := scrubVerdicts(t, s); res.Damaged != 0 || slices.Contains(ok, false) {
		t.Fatalf("after a round of captures: %d damaged chunks, verdicts %v", res.Damaged, ok)
	}
}

// storedValueBytes is the size of every stored value.
func storedValueBytes(t *testing.T, s *Store) int64 {
	t.Helper()
	var n int64
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketRefs).ForEach(func(k, v []byte) error {
			if r, ok := decodeRef(v); ok && len(k) == len(Hash{}) {
				n += int64(r.size)
			}
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}
