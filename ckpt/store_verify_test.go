package ckpt

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
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

// TestCorruptSegmentRandom flips a random byte of a segment file: Scrub
// says ok for exactly the epochs that read back, and what reads back is
// what was captured. It logs how often a key is left with no usable
// epoch, as chunks are shared between kept epochs; two more captures of
// a memory holding those chunks make a whole epoch again.
func TestCorruptSegmentRandom(t *testing.T) {
	path, mems := damagedStore(t)
	segs, err := os.ReadDir(path + ".seg")
	if err != nil || len(segs) == 0 {
		t.Fatalf("no segment: %v", err)
	}
	var hurt, lost int
	const trials = 16
	for seed := range uint64(trials) {
		r := rand.New(rand.NewPCG(seed, 13))
		p := copyStore(t, path)
		seg := filepath.Join(p+".seg", segs[r.IntN(len(segs))].Name())
		fi, _ := os.Stat(seg)
		xorFile(t, seg, r.Int64N(fi.Size()), 1, byte(1+r.IntN(255)))
		s := openTest(t, Config{Path: p, ChunkSize: 4 << 10, NoSync: true})
		res, err := s.Scrub()
		if err != nil {
			t.Fatal(err)
		}
		usable := map[Key]bool{}
		for _, ec := range res.Epochs {
			m := mustManifest(t, s, ec.Key, ec.Epoch)
			got := make([]byte, m.MemSize)
			rerr := s.ReadMemory(m, got)
			switch {
			case rerr == nil && ec.Err != nil:
				t.Fatalf("seed %d: epoch %d of %v reads back but Scrub says %v", seed, ec.Epoch, ec.Key, ec.Err)
			case rerr != nil && ec.Err == nil:
				t.Fatalf("seed %d: Scrub says epoch %d of %v is ok but reading it fails: %v", seed, ec.Epoch, ec.Key, rerr)
			case rerr == nil && !bytes.Equal(got, mems[pin{ec.Key, ec.Epoch}]):
				t.Fatalf("seed %d: epoch %d of %v reads back different memory", seed, ec.Epoch, ec.Key)
			}
			usable[ec.Key] = usable[ec.Key] || rerr == nil
		}
		if res.Damaged > 0 {
			hurt++
		}
		for _, k := range damageKeys {
			if !usable[k] {
				lost++
			}
		}
		// Two more captures of the memory of epoch 3: the first finds
		// the damage, the second writes the damaged chunks again.
		for _, k := range damageKeys {
			for e := uint64(4); e <= 5; e++ {
				capture(t, s, testMeta(k, e), mems[pin{k, 3}])
			}
			m, _, err := s.Latest(k, testBinding)
			if err != nil || m.Epoch != 5 {
				t.Fatalf("seed %d: %v has no whole epoch 5 after two captures: %v", seed, k, err)
			}
			if got := readBack(t, s, m); !bytes.Equal(got, mems[pin{k, 3}]) {
				t.Fatalf("seed %d: epoch 5 of %v reads back different memory", seed, k)
			}
		}
		s.Close()
	}
	t.Logf("%d of %d flips hit a chunk; %d keys left with no usable epoch, none after two more captures", hurt, trials, lost)
}
