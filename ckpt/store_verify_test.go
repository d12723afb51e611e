package ckpt

import (
	"bytes"
	"errors"
	"testing"
)

// threeEpochs stores epochs 1-3 of k; each changes chunk 1 only, so the
// other chunks are shared by all three.
func threeEpochs(t *testing.T, s *Store, k Key) [][]byte {
	t.Helper()
	mem := genMemory(256<<10, 5)
	var mems [][]byte
	for e := uint64(1); e <= 3; e++ {
		mem = bytes.Clone(mem)
		mem[cs(s)+int(e)] ^= 0x5a
		capture(t, s, testMeta(k, e), mem)
		mems = append(mems, mem)
	}
	return mems
}

func scrubVerdicts(t *testing.T, s *Store) (*ScrubResult, []bool) {
	t.Helper()
	res, err := s.Scrub()
	if err != nil {
		t.Fatal(err)
	}
	var ok []bool
	for _, ec := range res.Epochs {
		if ec.Err != nil && !errors.Is(ec.Err, ErrCorrupt) && !errors.Is(ec.Err, ErrTruncated) {
			t.Fatalf("epoch %d: %v", ec.Epoch, ec.Err)
		}
		ok = append(ok, ec.Err == nil)
	}
	return res, ok
}

func TestScrubSharedChunk(t *testing.T) {
	s := openTest(t, testConfig(t))
	k := Key{Job: "scrub"}
	mems := threeEpochs(t, s, k)
	res, ok := scrubVerdicts(t, s)
	if res.Damaged != 0 || len(ok) != 3 || !ok[0] || !ok[1] || !ok[2] {
		t.Fatalf("sound store: %+v", res)
	}
	m, _ := s.Manifest(k, 3)
	var shared Hash
	for _, h := range m.Chunks[2:] {
		if !h.IsZero() {
			shared = h
		}
	}
	mutateChunk(t, s, shared, func(v []byte) []byte { v[len(v)/2] ^= 1; return v })
	res, ok = scrubVerdicts(t, s)
	if res.Damaged != 1 || ok[0] || ok[1] || ok[2] {
		t.Fatalf("a chunk shared by every epoch is damaged: %d damaged, verdicts %v", res.Damaged, ok)
	}
	// The damaged chunk is marked: the next capture writes it again, so
	// the new epoch is usable.
	capture(t, s, testMeta(k, 4), mems[2])
	res, ok = scrubVerdicts(t, s)
	if len(ok) != 3 || !ok[2] || res.Epochs[2].Epoch != 4 {
		t.Fatalf("after a capture that rewrote the damaged chunk: %+v", res.Epochs)
	}
	if got := readBack(t, s, mustManifest(t, s, k, 4)); !bytes.Equal(got, mems[2]) {
		t.Fatal("epoch 4 reads back different memory")
	}
}

func TestScrubOwnChunk(t *testing.T) {
	s := openTest(t, testConfig(t))
	k := Key{Job: "scrub"}
	threeEpochs(t, s, k)
	m, _ := s.Manifest(k, 3)
	mutateChunk(t, s, m.Chunks[1], func(v []byte) []byte { v[len(v)-1] ^= 0x80; return v })
	res, ok := scrubVerdicts(t, s)
	if res.Damaged != 1 || !ok[0] || !ok[1] || ok[2] {
		t.Fatalf("epoch 3's own chunk is damaged: verdicts %v", ok)
	}
	mutateValue(t, s, bucketManifests, manifestKey(k, 1), func(v []byte) []byte { v[30] ^= 1; return v })
	_, ok = scrubVerdicts(t, s)
	if ok[0] || !ok[1] || ok[2] {
		t.Fatalf("epoch 1's manifest is damaged too: verdicts %v", ok)
	}
}

func mustManifest(t *testing.T, s *Store, k Key, e uint64) *Manifest {
	t.Helper()
	m, err := s.Manifest(k, e)
	if err != nil {
		t.Fatal(err)
	}
	return m
}
