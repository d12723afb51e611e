package ckpt

import (
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
	if err := fail("commit:batch"); err != nil {
		return err
	}
	bad := s.badSnapshot()
	type put struct {
		i   int
		seq uint64
	}
	var wrote []put
	err := s.db.Update(func(tx *bolt.Tx) error {
		wrote = wrote[:0]
		chunks, refs := tx.Bucket(bucketChunks), tx.Bucket(bucketRefs)
		for _, i := range batch {
			j := &p.jobs[i]
			if _, isBad := bad[j.hash]; !isBad && refs.Get(j.hash[:]) != nil {
				continue // already stored
			}
			seq, err := chunks.NextSequence()
			if err != nil {
				return err
			}
			if err := putChunk(chunks, seq, j.value); err != nil {
				return err
			}
			wrote = append(wrote, put{i, seq})
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, w := range wrote {
		p.jobs[w.i].wrote, p.jobs[w.i].seq = true, w.seq
	}
	return nil
}

// dropOrphans removes the chunks a failed capture wrote early; nothing
// references them.
func (s *Store) dropOrphans(p *Pending) {
	var seqs []uint64
	for _, j := range p.jobs {
		if j.wrote {
			seqs = append(seqs, j.seq)
		}
	}
	if len(seqs) == 0 {
		return
	}
	_ = s.db.Update(func(tx *bolt.Tx) error {
		chunks := tx.Bucket(bucketChunks)
		for _, seq := range seqs {
			if err := deleteChunk(chunks, seqKey(seq)); err != nil {
				return err
			}
		}
		return nil
	})
}

// sweepOrphans deletes chunk values that no index entry points to: left by
// a crash between a capture's early batches and its commit.
func sweepOrphans(tx *bolt.Tx) (int, error) {
	chunks, refs := tx.Bucket(bucketChunks), tx.Bucket(bucketRefs)
	live := make(map[uint64]struct{}, refs.Stats().KeyN)
	if err := refs.ForEach(func(_, v []byte) error {
		if r, ok := decodeRef(v); ok {
			live[r.seq] = struct{}{}
		}
		return nil
	}); err != nil {
		return 0, err
	}
	var dead [][]byte
	c := chunks.Cursor()
	for k, _ := c.First(); k != nil; k, _ = c.Next() {
		if _, ok := live[parseSeqKey(k)]; !ok || len(k) != 8 {
			dead = append(dead, append([]byte(nil), k...))
		}
	}
	for _, k := range dead {
		if err := deleteChunk(chunks, k); err != nil {
			return 0, err
		}
	}
	return len(dead), nil
}
