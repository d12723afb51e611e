package ckpt

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"testing"
)

// repairOpen repairs path and opens the result, which must be sound.
func repairOpen(t *testing.T, path, what string) (*Store, *RepairResult) {
	t.Helper()
	res, err := Repair(path)
	if err != nil {
		t.Fatalf("%s: Repair: %v", what, err)
	}
	if res.Sound {
		t.Fatalf("%s: Repair found the damaged index sound", what)
	}
	if _, err := os.Stat(res.Backup); err != nil {
		t.Fatalf("%s: the damaged file is not kept: %v", what, err)
	}
	s, err := Open(Config{Path: path, ChunkSize: 4 << 10, NoSync: true})
	if err != nil {
		t.Fatalf("%s: Open after Repair: %v", what, err)
	}
	return s, res
}

// TestRepairDamagedPages damages the header of each page of the tree in
// turn. The scan of every page reads a leaf whatever its header says (a
// branch only leads to leaves), so every key keeps its newest epoch; what
// is read back is what was captured.
func TestRepairDamagedPages(t *testing.T) {
	path, mems := damagedStore(t)
	pages, ps := treePages(t, path)
	for i, id := range pages {
		half := int64(i%2) * 8 // the page id, or flags, count and overflow
		p := copyStore(t, path)
		xorFile(t, p, int64(id)*int64(ps)+half, 8, 0xff)
		what := fmt.Sprintf("page %d header bytes %d-%d", id, half, half+8)
		s, res := repairOpen(t, p, what)
		if good := checkReadable(t, s, mems); good != len(damageKeys) {
			t.Errorf("%s: %d of %d keys readable after repair (dropped %v, damage %v)", what, good, len(damageKeys), res.Dropped, res.Damage)
		}
		checkCommits(t, s, res)
		for _, k := range damageKeys {
			if m, _, err := s.Latest(k, testBinding); err != nil || m.Epoch != 3 {
				t.Errorf("%s: %v lost its newest epoch (%v)", what, k, err)
			}
		}
		s.Close()
	}
}

// TestRepairLostLeaf zeroes a leaf of the refs bucket: its chunks are
// gone from the index, so the epochs that use them are dropped and the
// others are kept; nothing reads back wrong.
func TestRepairLostLeaf(t *testing.T) {
	path, mems := damagedStore(t)
	pages, ps := treePages(t, path)
	b, _ := os.ReadFile(path)
	var leaf uint64
	for _, id := range pages {
		p := b[int(id)*ps:]
		if binary.LittleEndian.Uint16(p[8:]) == boltLeafFlag && binary.LittleEndian.Uint16(p[10:]) > 40 {
			leaf = id // a refs leaf: manifests are few per page
			break
		}
	}
	if leaf == 0 {
		t.Fatal("no leaf of chunk references")
	}
	f, _ := os.OpenFile(path, os.O_RDWR, 0)
	f.WriteAt(make([]byte, ps), int64(leaf)*int64(ps))
	f.Close()
	s, res := repairOpen(t, path, "zeroed leaf")
	defer s.Close()
	if len(res.Dropped) == 0 {
		t.Fatalf("no epoch dropped though a leaf of references is lost (kept %v)", res.Kept)
	}
	t.Logf("kept %d epochs, dropped %d", len(res.Kept), len(res.Dropped))
	for _, err := range res.Dropped {
		if !errors.Is(err, ErrCorrupt) {
			t.Fatalf("dropped: %v", err)
		}
	}
	checkReadable(t, s, mems)
	checkCommits(t, s, res)
	for _, ke := range res.Kept {
		m, err := s.Manifest(ke.Key, ke.Epoch)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Verify(m); err != nil {
			t.Fatalf("kept epoch does not verify: %v", err)
		}
	}
}

func TestRepairTruncated(t *testing.T) {
	path, mems := damagedStore(t)
	if err := os.Truncate(path, usedBytes(t, path)-4096); err != nil {
		t.Fatal(err)
	}
	s, _ := repairOpen(t, path, "truncated")
	defer s.Close()
	checkReadable(t, s, mems)
	if p, err := s.Capture(testMeta(damageKeys[0], 9), mems[pin{damageKeys[0], 3}]); err != nil {
		t.Fatal(err)
	} else if err := p.Wait(); err != nil {
		t.Fatalf("capture after repair: %v", err)
	}
}

func TestCorruptIndexRepairRandom(t *testing.T) {
	path, mems := damagedStore(t)
	used := usedBytes(t, path)
	repaired := 0
	for seed := uint64(0); repaired < 6 && seed < 200; seed++ {
		r := rand.New(rand.NewPCG(seed, 91))
		p := copyStore(t, path)
		for range 1 + r.IntN(8) {
			xorFile(t, p, r.Int64N(used), 1, byte(1+r.IntN(255)))
		}
		if checkIndex(p) == nil {
			continue
		}
		repaired++
		s, _ := repairOpen(t, p, fmt.Sprintf("seed %d", seed))
		checkReadable(t, s, mems)
		s.Close()
	}
	if repaired == 0 {
		t.Fatal("no seed damaged the tree")
	}
}

// checkCommits wants the commit records kept to be of job epochs all of
// whose worker checkpoints were kept, and at least one kept if any such
// epoch is (a damaged root page may lose the newest record).
func checkCommits(t *testing.T, s *Store, res *RepairResult) {
	t.Helper()
	whole := map[uint64]int{}
	for _, ke := range res.Kept {
		whole[ke.Epoch]++
	}
	cs, err := s.Commits("damage")
	if err != nil {
		t.Fatal(err)
	}
	var want int
	for _, n := range whole {
		if n == len(damageKeys) {
			want++
		}
	}
	if len(cs) > want || want > 0 && len(cs) == 0 || res.Commits != len(cs) {
		t.Fatalf("%d commit records kept (%d reported), %d job epochs whole", len(cs), res.Commits, want)
	}
	if len(cs) < want {
		t.Logf("%d of %d whole job epochs lost their commit record", want-len(cs), want)
	}
	for _, c := range cs {
		if whole[c.Epoch] != len(damageKeys) {
			t.Fatalf("commit record of epoch %d kept without its checkpoints", c.Epoch)
		}
	}
}

func TestRepairSound(t *testing.T) {
	path, _ := damagedStore(t)
	before, _ := os.ReadFile(path)
	res, err := Repair(path)
	if err != nil || !res.Sound {
		t.Fatalf("Repair of a sound index: %+v, %v", res, err)
	}
	after, _ := os.ReadFile(path)
	if string(before) != string(after) {
		t.Fatal("Repair changed a sound index")
	}
}

func TestRepairInUse(t *testing.T) {
	cfg := testConfig(t)
	openTest(t, cfg)
	if _, err := Repair(cfg.Path); !errors.Is(err, ErrInUse) {
		t.Fatalf("Repair of an open store: %v", err)
	}
}
