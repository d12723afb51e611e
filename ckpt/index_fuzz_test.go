package ckpt

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// fuzzIndex is a seed: the pages of a small store with two epochs.
func fuzzIndex(f *testing.F) []byte {
	cfg := Config{Path: filepath.Join(f.TempDir(), "ckpt.db"), ChunkSize: 4 << 10, NoSync: true}
	s, err := Open(cfg)
	if err != nil {
		f.Fatal(err)
	}
	k := Key{Job: "fuzz"}
	mem := genMemory(32<<10, 3)
	for e := uint64(1); e <= 2; e++ {
		mem[e] ^= 1
		p, err := s.Capture(testMeta(k, e), mem)
		if err == nil {
			err = p.Wait()
		}
		if err != nil {
			f.Fatal(err)
		}
	}
	if err := s.CommitJob(Commit{Job: "fuzz", Epoch: 2, Workers: 1}); err != nil {
		f.Fatal(err)
	}
	s.Close()
	b, err := os.ReadFile(cfg.Path)
	if err != nil {
		f.Fatal(err)
	}
	bf, err := openBoltFile(cfg.Path)
	if err != nil || len(bf.metas) == 0 {
		f.Fatal("seed store has no meta page")
	}
	defer bf.close()
	return b[:int(bf.metas[0].pgid)*bf.pageSize]
}

// FuzzIndexCheck: whatever the bytes of ckpt.db, Open refuses them with
// ErrIndexDamaged or opens them, and then reads, a capture and a repair
// neither panic nor fault (a panic in bbolt's own goroutine would end the
// fuzzing process).
func FuzzIndexCheck(f *testing.F) {
	f.Add(fuzzIndex(f))
	f.Fuzz(func(t *testing.T, data []byte) {
		dir := t.TempDir()
		path := filepath.Join(dir, "ckpt.db")
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		s, err := Open(Config{Path: path, ChunkSize: 4 << 10, NoSync: true, PoolBytes: -1, Workers: 1})
		if err != nil { // refused: ErrIndexDamaged, or bbolt's own refusal (a file too small, ...)
			if errors.Is(err, ErrIndexDamaged) {
				if _, err := Repair(path); err != nil {
					t.Fatalf("Repair: %v", err)
				}
			}
			return
		}
		defer s.Close()
		keys, _ := s.Keys()
		for _, k := range keys {
			s.Epochs(k)
			if m, _, err := s.Latest(k, testBinding); err == nil {
				s.ReadMemory(m, make([]byte, m.MemSize))
			}
		}
		s.Commits("fuzz")
		if p, err := s.Capture(testMeta(Key{Job: "fuzz"}, 9), genMemory(16<<10, 1)); err == nil {
			p.Wait()
		}
	})
}
