package ckpt

import (
	"bytes"
	"slices"

	bolt "go.etcd.io/bbolt"
)

// batchBytes is the least amount of compressed data written in one early
// transaction while the rest of a capture is still being compressed.
var batchBytes = 16 << 20

// writeChunks writes a capture's new chunks in batches as they come out of
// the compressors, so that compression and the disk overlap. These chunks
// have no reference count yet: until commit's transaction counts them they
// are orphans, which a failed capture removes (dropOrphans) and Open sweeps
// after a crash (sweepOrphans).
func (s *Store) writeChunks(p *Pending) error {
	var batch []int
	size := 0
	for {
		if size < batchBytes {
			select {
			case i := <-p.ready: // drain finished chunks first
				batch = append(batch, i)
				size += len(p.jobs[i].value)
				continue
			default:
			}
			select {
			case i := <-p.ready:
				batch = append(batch, i)
				size += len(p.jobs[i].value)
				continue
			case <-p.compressed:
				for more := true; more; {
					select {
					case i := <-p.ready:
						batch = append(batch, i)
						size += len(p.jobs[i].value)
					default:
						more = false
					}
				}
				// The rest goes into the commit's own transaction.
				return nil
			}
		}
		if err := s.writeBatch(p, batch); err != nil {
			return err
		}
		batch, size = batch[:0], 0
	}
}

func (s *Store) writeBatch(p *Pending, batch []int) error {
	slices.SortFunc(batch, func(a, b int) int { return bytes.Compare(p.jobs[a].hash[:], p.jobs[b].hash[:]) })
	if err := fail("commit:batch"); err != nil {
		return err
	}
	var wrote []int
	err := s.db.Update(func(tx *bolt.Tx) error {
		wrote = wrote[:0]
		chunks := tx.Bucket(bucketChunks)
		for _, i := range batch {
			j := &p.jobs[i]
			if chunks.Get(j.hash[:]) != nil {
				continue // present, or known bad: commit rewrites those
			}
			if err := chunks.Put(j.hash[:], j.value); err != nil {
				return err
			}
			wrote = append(wrote, i)
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, i := range wrote {
		p.jobs[i].wrote = true
	}
	for _, i := range batch {
		p.progress.Add(int64(p.jobs[i].raw))
	}
	return nil
}

// dropOrphans removes the chunks a failed capture wrote early and nothing
// references.
func (s *Store) dropOrphans(p *Pending) {
	var hs []Hash
	for _, j := range p.jobs {
		if j.wrote {
			hs = append(hs, j.hash)
		}
	}
	if len(hs) == 0 {
		return
	}
	_ = s.db.Update(func(tx *bolt.Tx) error {
		chunks, refs := tx.Bucket(bucketChunks), tx.Bucket(bucketRefs)
		for _, h := range hs {
			if refs.Get(h[:]) == nil {
				if err := chunks.Delete(h[:]); err != nil {
					return err
				}
			}
		}
		return nil
	})
}

// sweepOrphans deletes chunks that have no reference count: left by a
// crash between a capture's early batches and its commit.
func sweepOrphans(tx *bolt.Tx) (int, error) {
	chunks, refs := tx.Bucket(bucketChunks), tx.Bucket(bucketRefs)
	var dead [][]byte
	rc := refs.Cursor()
	rk, _ := rc.First()
	c := chunks.Cursor()
	for k, _ := c.First(); k != nil; k, _ = c.Next() {
		for rk != nil && bytes.Compare(rk, k) < 0 {
			rk, _ = rc.Next()
		}
		if rk == nil || !bytes.Equal(rk, k) {
			dead = append(dead, append([]byte(nil), k...))
		}
	}
	for _, k := range dead {
		if err := chunks.Delete(k); err != nil {
			return 0, err
		}
	}
	return len(dead), nil
}
