package ckpt

import (
	"bytes"
	"testing"

	bolt "go.etcd.io/bbolt"
)

// flattenChunks rewrites every chunk value the way earlier versions stored
// them: directly under its sequence number, not in a bucket of its own.
func flattenChunks(t *testing.T, s *Store) int {
	t.Helper()
	n := 0
	err := s.db.Update(func(tx *bolt.Tx) error {
		chunks := tx.Bucket(bucketChunks)
		var keys [][]byte
		c := chunks.Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			if v == nil {
				keys = append(keys, bytes.Clone(k))
			}
		}
		for _, k := range keys {
			v := bytes.Clone(chunks.Bucket(k).Get(chunkValueKey))
			if err := chunks.DeleteBucket(k); err != nil {
				return err
			}
			if err := chunks.Put(k, v); err != nil {
				return err
			}
			n++
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestPlainChunkValues: a store whose chunk values were written directly
// under their sequence numbers is read, verified, garbage-collected and
// deleted like one written now.
func TestPlainChunkValues(t *testing.T) {
	cfg := testConfig(t)
	cfg.Keep = 2
	s := openTest(t, cfg)
	k := Key{Job: "plain"}
	mem := genMemory(512<<10, 41)
	capture(t, s, testMeta(k, 1), mem)
	toBoltValues(t, s)
	if flattenChunks(t, s) == 0 {
		t.Fatal("no chunk buckets to flatten")
	}
	m, err := s.Manifest(k, 1)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Verify(m); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(readBack(t, s, m), mem) {
		t.Fatal("memory differs")
	}
	for e := uint64(2); e <= 4; e++ { // epochs 1 and 2 are dropped, mixing both layouts
		for c := range 5 {
			mem[(int(e)*5+c)*cs(s)] ^= byte(e)
		}
		capture(t, s, testMeta(k, e), mem)
		if e == 2 {
			toBoltValues(t, s)
			flattenChunks(t, s)
		}
		checkRefs(t, s)
	}
	m, _, err = s.Latest(k, testBinding)
	if err != nil || m.Epoch != 4 || !bytes.Equal(readBack(t, s, m), mem) {
		t.Fatalf("Latest = %v, %v", m, err)
	}
	// An orphan of either layout is swept at Open.
	err = s.db.Update(func(tx *bolt.Tx) error {
		chunks := tx.Bucket(bucketChunks)
		if err := chunks.Put(seqKey(1<<40), []byte("plain orphan")); err != nil {
			return err
		}
		return putChunk(chunks, 1<<41, []byte("orphan"))
	})
	if err != nil {
		t.Fatal(err)
	}
	before := bucketLen(t, s, bucketChunks)
	s.Close()
	s = openTest(t, cfg)
	if after := bucketLen(t, s, bucketChunks); after != before-2 {
		t.Fatalf("%d chunk values after Open, want %d", after, before-2)
	}
	if err := s.Delete(k); err != nil {
		t.Fatal(err)
	}
	if n := bucketLen(t, s, bucketChunks); n != 0 {
		t.Fatalf("%d chunk values left after Delete", n)
	}
}

// TestChunkOwnPages: dropping one chunk does not rewrite the values of
// others (each value has pages of its own).
func TestChunkOwnPages(t *testing.T) {
	s := openTest(t, Config{Path: t.TempDir() + "/pages.db", NoSync: true})
	k := Key{Job: "pages"}
	mem := make([]byte, 64*s.cfg.ChunkSize)
	fillRandom(mem, nil2rand())
	capture(t, s, testMeta(k, 1), mem)
	toBoltValues(t, s) // the values dropped first are in bbolt
	s.cfg.Keep = 1
	for e := uint64(2); e <= 3; e++ {
		for c := 0; c < 64; c += 16 { // 4 scattered chunks change
			mem[c*s.cfg.ChunkSize] ^= byte(e)
		}
		st0 := s.db.Stats()
		capture(t, s, testMeta(k, e), mem)
		st1 := s.db.Stats()
		d := st1.Sub(&st0)
		written := d.TxStats.GetPageAlloc()
		// 4 new values, the manifest and a few small pages (in the commit
		// and in the transaction that frees the 4 dropped values); not
		// the neighbours of the dropped values.
		if limit := int64(4*s.cfg.ChunkSize + 48<<10); written > limit {
			t.Errorf("epoch %d: commit wrote %d bytes, want at most %d", e, written, limit)
		}
	}
}
