package ckpt

import (
	bolt "go.etcd.io/bbolt"
)

// batchBytes is the least amount of compressed data written in one early
// batch while the rest of a capture is still being compressed.
var batchBytes = 16 << 20

// writeChunks writes a capture's new chunks to the current segment in
// batches as they come out of the compressors (for a copy-on-write
// capture, out of its scan), so that compression and the disk overlap.
// These values count only once commit's transaction records them: a
// failed capture gives their room back (segments.rollback), and Open does
// after a crash.
func (s *Store) writeChunks(p *Pending) error {
	if p.rep != nil { // a replica's, written as they arrived
		return nil
	}
	st := p.stream
	if st != nil {
		<-st.opened
		st.setState(streamWriting)
		defer st.setState(streamDone)
	}
	p.locs = make([]chunkLoc, len(p.jobs))
	if len(p.jobs) == 0 {
		return nil
	}
	// A copy-on-write capture may have nothing to store after all: its
	// segment is begun once it has.
	begun := false
	begin := func() error {
		if begun {
			return nil
		}
		begun = true
		return s.segs.begin()
	}
	if st == nil {
		if err := begin(); err != nil {
			return err
		}
	}
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
				if st != nil {
					n := st.published()
					p.jobs, p.locs = p.jobs[:n], p.locs[:n]
					if n > 0 {
						return begin()
					}
				}
				// The rest goes into the commit's own transaction.
				return nil
			}
		}
		if err := begin(); err != nil {
			return err
		}
		if err := s.writeBatch(p, batch); err != nil {
			return err
		}
		if st != nil {
			st.taken(int64(size))
		}
		batch, size = batch[:0], 0
	}
}

// writeBatch writes the values of a batch of jobs whose hash is not yet
// stored, and syncs them. A value found stored is kept until the commit,
// which writes it after all if that chunk went meanwhile.
func (s *Store) writeBatch(p *Pending, batch []int) error {
	if err := fail("commit:batch"); err != nil {
		return err
	}
	bad := s.badSnapshot()
	var todo []int
	err := s.db.View(func(tx *bolt.Tx) error {
		refs := tx.Bucket(bucketRefs)
		for _, i := range batch {
			j := &p.jobs[i]
			if _, isBad := bad[j.hash]; isBad || refs.Get(j.hash[:]) == nil {
				todo = append(todo, i)
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	if err := s.writeValues(p, todo); err != nil {
		return err
	}
	if err := s.segs.sync(); err != nil {
		return err
	}
	s.release(p, todo)
	s.dropStored(p, batch, todo)
	return fail("commit:batched")
}

// dropStored lets go of the values of a batch's jobs that it did not write
// (the jobs not in todo) whose chunk the key's newest durable capture
// holds: that capture stays until this one commits (Keep never drops the
// newest durable epoch), so the value will not be needed. A capture taken
// while the one before was still being written (two rounds under way)
// hashes what that one stores again; without this, it held every such
// value until its commit, up to the whole memory's compressed size. The
// others are kept for the commit, which writes them after all if their
// chunk went meanwhile (another key's deleted).
func (s *Store) dropStored(p *Pending, batch, todo []int) {
	if len(batch) == len(todo) || p.stream == nil {
		return
	}
	ks := s.keyState(p.m.Key)
	ks.mu.Lock()
	base := ks.base
	ks.mu.Unlock()
	if base == nil {
		return
	}
	if p.baseSet == nil || p.baseSetOf != base {
		p.baseSet, p.baseSetOf = make(map[Hash]struct{}, len(base.mem)+len(base.files)), base
		for _, hs := range [][]Hash{base.mem, base.files} {
			for _, h := range hs {
				p.baseSet[h] = struct{}{}
			}
		}
	}
	for _, i := range batch {
		j := &p.jobs[i]
		// The jobs written have no slab any more (release).
		if _, ok := p.baseSet[j.hash]; !ok || j.slab == nil {
			continue
		}
		s.unref(j.slab)
		j.slab, j.value, j.dropped = nil, nil, true
	}
}

// writeValues writes the values of the listed jobs to the current segment,
// recording where each went in p.locs; the caller syncs them.
func (s *Store) writeValues(p *Pending, jobs []int) error {
	if len(jobs) == 0 {
		return nil
	}
	vals := make([][]byte, len(jobs))
	for n, i := range jobs {
		vals[n] = p.jobs[i].value
	}
	offs, err := s.segs.write(vals)
	if err != nil {
		return err
	}
	for n, i := range jobs {
		p.locs[i] = chunkLoc{seg: s.segs.cur, off: uint64(offs[n]), size: uint64(len(vals[n]))}
	}
	return nil
}

// sweepOrphans deletes chunk values in the chunks bucket that no index
// entry points to (left by a crash of an earlier version between a
// capture's early batches and its commit).
func sweepOrphans(tx *bolt.Tx) (int, error) {
	chunks, refs := tx.Bucket(bucketChunks), tx.Bucket(bucketRefs)
	live := make(map[uint64]struct{}, refs.Stats().KeyN)
	if err := refs.ForEach(func(_, v []byte) error {
		if r, ok := decodeRef(v); ok && r.seg == 0 {
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
