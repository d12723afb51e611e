package ckpt

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	bolt "go.etcd.io/bbolt"
)

func TestFailpoints(t *testing.T) {
	defer func(b int) { batchBytes = b }(batchBytes)
	batchBytes = 2 << 10 // several early batches per capture
	for _, cow := range []bool{false, true} {
		for _, name := range []string{"commit:batch", "commit:batched", "segment:write", "segment:sync", "commit:chunks", "commit:gc", "commit:manifest", "commit:tx"} {
			testFailpoint(t, name, cow)
		}
	}
}

// testFailpoint fails a capture at failpoint name (a copy-on-write one if
// cow: its values are written while it is scanned, and some given back
// before it fails) and checks that the store is as before it.
func testFailpoint(t *testing.T, name string, cow bool) {
	sub := name
	if cow {
		sub += "/cow"
	}
	t.Run(sub, func(t *testing.T) {
		cfg := testConfig(t)
		cfg.Keep = 1 // the failed commit would also have dropped epoch 1
		s := openTest(t, cfg)
		k := Key{Job: "fp"}
		mem := genMemory(256<<10, 5)
		capture(t, s, testMeta(k, 1), mem)
		before := storeDigest(t, s)

		dirty := []int{3, 4, 30, 31, 60, 61, 62, 63}
		for _, c := range dirty {
			mem[c*cs(s)+1] ^= 0xff
		}
		injected := errors.New("no space left on device (injected)")
		setFailpoint(func(n string) error {
			if n == name {
				return injected
			}
			return nil
		})
		meta := testMeta(k, 2)
		if cow {
			n := len(mem) / cs(s)
			f := newFrozenMem(mem, n)
			for i := range n {
				f.copyChunk(i)
			}
			meta.Dirty = &Dirty{Mark: 2, Frozen: f}
		}
		p, err := s.Capture(meta, mem)
		if err != nil {
			t.Fatal(err)
		}
		<-p.Done()
		setFailpoint(nil)
		err = p.Err()
		if !errors.Is(err, ErrWrite) || !errors.Is(err, injected) || strings.Contains(err.Error(), "\n") ||
			!strings.HasPrefix(err.Error(), `ckpt: epoch 2 of job "fp" worker 0: not written: `) {
			t.Fatalf("Err = %v", err)
		}
		if after := storeDigest(t, s); after != before {
			t.Fatal("a failed commit modified the store")
		}
		m, _, err := s.Latest(k, testBinding)
		if err != nil || m.Epoch != 1 {
			t.Fatalf("Latest after failure: %v, %v", m, err)
		}

		// The next capture is computed against epoch 1, the last durable one.
		st := capture(t, s, testMeta(k, 3), mem)
		if st.Changed != len(dirty) {
			t.Fatalf("capture after failure changed %d chunks, want %d", st.Changed, len(dirty))
		}
		m, _, err = s.Latest(k, testBinding)
		if err != nil || m.Epoch != 3 || !bytes.Equal(readBack(t, s, m), mem) {
			t.Fatalf("Latest after recovery: %v, %v", m, err)
		}
		checkRefs(t, s)
	})
}

func TestDeleteFailpoint(t *testing.T) {
	s := openTest(t, testConfig(t))
	k := Key{Job: "del"}
	capture(t, s, testMeta(k, 1), genMemory(128<<10, 6))
	before := storeDigest(t, s)
	setFailpoint(func(string) error { return errors.New("injected") })
	err := s.Delete(k)
	setFailpoint(nil)
	if !errors.Is(err, ErrWrite) {
		t.Fatalf("Delete = %v", err)
	}
	if storeDigest(t, s) != before {
		t.Fatal("a failed Delete modified the store")
	}
	if _, _, err := s.Latest(k, testBinding); err != nil {
		t.Fatal(err)
	}
}

func TestOpenSweepsOrphans(t *testing.T) {
	cfg := testConfig(t)
	s := openTest(t, cfg)
	k := Key{Job: "orphan"}
	capture(t, s, testMeta(k, 1), genMemory(128<<10, 8))
	before := storeDigest(t, s)
	// A crash between an early batch and its commit leaves chunks without
	// a reference count.
	err := s.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketChunks).Put(seqKey(1<<40), []byte("orphan"))
	})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	s = openTest(t, cfg)
	if storeDigest(t, s) != before {
		t.Fatal("Open did not remove the orphan chunk")
	}
}

// TestFreeFailpoint: the chunk values a commit leaves unreferenced are
// freed after the checkpoint is durable; if that fails the checkpoint
// stands, the values wait for the next try, and Open sweeps them after a
// crash.
func TestFreeFailpoint(t *testing.T) {
	cfg := testConfig(t)
	cfg.Keep = 1
	s := openTest(t, cfg)
	k := Key{Job: "free"}
	mem := genMemory(256<<10, 5)
	capture(t, s, testMeta(k, 1), mem)
	change := func(e uint64) {
		for c := 0; c < 64; c += 8 {
			mem[c*cs(s)+1] = byte(e)
		}
	}
	injected := errors.New("input/output error (injected)")
	failFree := func(n string) error {
		if n == "free:tx" {
			return injected
		}
		return nil
	}
	setFailpoint(failFree)
	defer setFailpoint(nil)
	change(2)
	capture(t, s, testMeta(k, 2), mem)
	if m, _, err := s.Latest(k, testBinding); err != nil || m.Epoch != 2 || !bytes.Equal(readBack(t, s, m), mem) {
		t.Fatalf("Latest after a failed free = %v, %v", m, err)
	}
	if deadBytes(t, s) == 0 {
		t.Fatal("no unreferenced chunk values: want the dropped ones left")
	}
	// Freed at the next try.
	setFailpoint(nil)
	change(3)
	capture(t, s, testMeta(k, 3), mem)
	checkRefs(t, s)

	// Values still not freed when the store closes (or the process
	// dies) are swept by the next Open.
	setFailpoint(failFree)
	change(4)
	capture(t, s, testMeta(k, 4), mem)
	if deadBytes(t, s) == 0 {
		t.Fatal("no unreferenced chunk values before reopening")
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	setFailpoint(nil)
	s = openTest(t, cfg)
	checkRefs(t, s)
	if m, _, err := s.Latest(k, testBinding); err != nil || m.Epoch != 4 || !bytes.Equal(readBack(t, s, m), mem) {
		t.Fatalf("Latest after reopening = %v, %v", m, err)
	}
}
