package ckpt

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var damageKeys = []Key{{Job: "damage", Worker: 0}, {Job: "damage", Worker: 1}}

// damagedStore writes three epochs of two keys, enough chunks that the
// refs bucket spans branch and leaf pages, closes the store and returns
// its path and the memory of each (key, epoch).
func damagedStore(t *testing.T) (string, map[pin][]byte) {
	t.Helper()
	cfg := testConfig(t)
	s := openTest(t, cfg)
	mems := make(map[pin][]byte)
	for i, k := range damageKeys {
		mem := genMemory(1<<20, uint64(i+1))
		for e := uint64(1); e <= 3; e++ {
			if e > 1 {
				mem = bytes.Clone(mem)
				for c := 0; c < len(mem); c += 5 * cs(s) {
					mem[c+int(e)] ^= byte(e)
				}
			}
			capture(t, s, testMeta(k, e), mem)
			mems[pin{k, e}] = mem
		}
	}
	for e := uint64(1); e <= 3; e++ {
		if err := s.CommitJob(Commit{Job: "damage", Epoch: e, Workers: uint32(len(damageKeys))}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	return cfg.Path, mems
}

// copyStore copies a closed store (the file and its segments) to a new
// directory and returns the new file's path.
func copyStore(t *testing.T, path string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "copy")
	if err := os.CopyFS(dir, os.DirFS(filepath.Dir(path))); err != nil {
		t.Fatal(err)
	}
	return filepath.Join(dir, filepath.Base(path))
}

// treePages lists the branch and leaf pages the tree of path uses.
func treePages(t *testing.T, path string) (pages []uint64, pageSize int) {
	t.Helper()
	bf, err := openBoltFile(path)
	if err != nil {
		t.Fatal(err)
	}
	defer bf.close()
	w := &boltWalk{bf: bf, hwm: bf.metas[0].pgid, seen: make(map[uint64]bool)}
	w.page(nil, bf.metas[0].root, nil, nil)
	if len(w.damaged) > 0 {
		t.Fatalf("pristine store: %v", w.damaged)
	}
	for id := range w.seen {
		b := make([]byte, 16)
		bf.f.ReadAt(b, int64(id)*int64(bf.pageSize))
		if binary.LittleEndian.Uint64(b) == id { // not an overflow page
			pages = append(pages, id)
		}
	}
	return pages, bf.pageSize
}

// usedBytes is the part of the file that holds pages: bbolt grows the
// file ahead of them.
func usedBytes(t *testing.T, path string) int64 {
	t.Helper()
	bf, err := openBoltFile(path)
	if err != nil || len(bf.metas) == 0 {
		t.Fatalf("pristine store: %v", err)
	}
	defer bf.close()
	return int64(bf.metas[0].pgid) * int64(bf.pageSize)
}

func xorFile(t *testing.T, path string, off int64, n int, x byte) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, n)
	f.ReadAt(b, off)
	for i := range b {
		b[i] ^= x
	}
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}

// wantDamaged opens path and wants a one-line refusal naming the file and
// the repair.
func wantDamaged(t *testing.T, path, what string) {
	t.Helper()
	s, err := Open(Config{Path: path, ChunkSize: 4 << 10, NoSync: true})
	if err == nil {
		s.Close()
		t.Fatalf("%s: Open accepted the damaged index", what)
	}
	msg := err.Error()
	if !errors.Is(err, ErrIndexDamaged) || strings.Contains(msg, "\n") ||
		!strings.Contains(msg, path) || !strings.Contains(msg, "librahost ckpt repair --state "+filepath.Dir(path)) {
		t.Fatalf("%s: Open: %v", what, err)
	}
}

func TestOpenRefusesDamagedPageHeaders(t *testing.T) {
	path, _ := damagedStore(t)
	pages, ps := treePages(t, path)
	var branch int
	for _, id := range pages {
		for _, half := range []int64{0, 8} { // the page id; flags, count and overflow
			p := copyStore(t, path)
			xorFile(t, p, int64(id)*int64(ps)+half, 8, 0xff)
			wantDamaged(t, p, fmt.Sprintf("page %d header bytes %d-%d", id, half, half+8))
		}
		b, _ := os.ReadFile(path)
		if binary.LittleEndian.Uint16(b[int(id)*ps+8:]) == boltBranchFlag {
			branch++
		}
	}
	if branch == 0 || len(pages) < 4 {
		t.Fatalf("the store has %d pages, %d of them branches: make it larger", len(pages), branch)
	}
}

func TestOpenRefusesTruncatedIndex(t *testing.T) {
	path, _ := damagedStore(t)
	used := usedBytes(t, path)
	for _, size := range []int64{8192, 3 * 4096, used / 2, used - 4096} {
		p := copyStore(t, path)
		if err := os.Truncate(p, size); err != nil {
			t.Fatal(err)
		}
		wantDamaged(t, p, fmt.Sprintf("truncated to %d", size))
	}
}

func TestOpenRefusesZeroedMetaPages(t *testing.T) {
	path, mems := damagedStore(t)
	// Either meta page alone: bbolt falls back to the other one, whose
	// tree is intact after a clean close.
	for _, id := range []int64{0, 1} {
		p := copyStore(t, path)
		f, _ := os.OpenFile(p, os.O_RDWR, 0)
		f.WriteAt(make([]byte, 4096), id*4096)
		f.Close()
		s, err := Open(Config{Path: p, ChunkSize: 4 << 10, NoSync: true})
		if err != nil {
			t.Fatalf("meta %d zeroed: %v", id, err)
		}
		checkReadable(t, s, mems)
		s.Close()
	}
	p := copyStore(t, path)
	f, _ := os.OpenFile(p, os.O_RDWR, 0)
	f.WriteAt(make([]byte, 8192), 0)
	f.Close()
	wantDamaged(t, p, "both meta pages zeroed")
}

// checkReadable reads the newest good epoch of every key: what it returns
// must be exactly what was captured (a damaged store may refuse epochs,
// never return wrong memory).
func checkReadable(t *testing.T, s *Store, mems map[pin][]byte) (good int) {
	t.Helper()
	for _, k := range damageKeys {
		m, _, err := s.Latest(k, testBinding)
		if err != nil {
			continue
		}
		want, ok := mems[pin{k, m.Epoch}]
		if !ok {
			t.Fatalf("Latest returned epoch %d of %v, never captured", m.Epoch, k)
		}
		got := make([]byte, m.MemSize)
		if err := s.ReadMemory(m, got); err != nil {
			continue
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("epoch %d of %v reads back different memory", m.Epoch, k)
		}
		good++
	}
	return good
}

// TestCorruptIndexRandom flips random bytes anywhere in the index: Open
// refuses the file in one line or opens it, and then every read either
// refuses or returns what was captured, and a capture still works.
func TestCorruptIndexRandom(t *testing.T) {
	path, mems := damagedStore(t)
	used := usedBytes(t, path)
	trials := 60
	if testing.Short() {
		trials = 15
	}
	var refused, opened int
	for seed := range uint64(trials) {
		r := rand.New(rand.NewPCG(seed, 77))
		p := copyStore(t, path)
		for range 1 + r.IntN(8) {
			xorFile(t, p, r.Int64N(used), 1, byte(1+r.IntN(255)))
		}
		s, err := Open(Config{Path: p, ChunkSize: 4 << 10, NoSync: true})
		if err != nil {
			if !errors.Is(err, ErrIndexDamaged) || strings.Contains(err.Error(), "\n") {
				t.Fatalf("seed %d: %v", seed, err)
			}
			refused++
			continue
		}
		opened++
		checkReadable(t, s, mems)
		for _, k := range damageKeys {
			s.Epochs(k)
		}
		if p, err := s.Capture(testMeta(Key{Job: "after"}, 1), genMemory(64<<10, seed)); err == nil {
			p.Wait()
		}
		s.Close()
	}
	t.Logf("%d refused, %d opened", refused, opened)
}

// A store whose chunk values an earlier version kept in bbolt: the check
// reads only the first page of each value, and still refuses a damaged
// header of any page; Repair salvages the values from their buckets.
func TestOpenRefusesDamagedLegacyPages(t *testing.T) {
	cfg := testConfig(t)
	s := openTest(t, cfg)
	k := damageKeys[0]
	mem := genMemory(128<<10, 9)
	capture(t, s, testMeta(k, 1), mem)
	if toBoltValues(t, s) == 0 {
		t.Fatal("no value moved into bbolt")
	}
	s.Close()
	pages, ps := treePages(t, cfg.Path)
	for i, id := range pages {
		p := copyStore(t, cfg.Path)
		xorFile(t, p, int64(id)*int64(ps)+8, 8, 0xff)
		wantDamaged(t, p, fmt.Sprintf("page %d", id))
		if i%4 != 0 {
			continue // repairing every copy adds nothing but time
		}
		s, _ := repairOpen(t, p, fmt.Sprintf("page %d", id))
		if checkReadable(t, s, map[pin][]byte{{k, 1}: mem}) != 1 {
			t.Errorf("page %d: the epoch is lost after repair", id)
		}
		s.Close()
	}
}
