package ckpt

import (
	"bytes"
	"encoding/binary"
	"errors"
	"slices"
	"time"

	bolt "go.etcd.io/bbolt"
)

// errMissing aborts a commit whose capture relies on a chunk that is no
// longer in the store.
type errMissing struct{ h Hash }

func (e *errMissing) Error() string {
	return "chunk " + short(e.h[:]) + " of the previous epoch is missing from the store"
}

func (e *errMissing) Is(target error) bool { return target == ErrChunkGone }

// commit makes one capture durable: the chunks not yet written go to the
// segment, then the reference counts, the segment's length, the manifest
// and the dropping of epochs beyond Keep are written in one transaction.
func (s *Store) commit(p *Pending) error {
	m := p.m
	var newBytes int64
	var rewritten []Hash
	var garbage []chunkLoc // values of chunks no longer referenced, freed after the commit
	// Holding the key's lock from the choice of epochs to drop until the
	// new base is published keeps a concurrent Capture of the same key from
	// choosing a base that this commit drops.
	ks := s.keyState(m.Key)
	ks.mu.Lock()
	defer ks.mu.Unlock()
	err := s.db.Update(func(tx *bolt.Tx) (txErr error) {
		newBytes, rewritten, garbage = 0, rewritten[:0], garbage[:0]
		refs, mans := tx.Bucket(bucketRefs), tx.Bucket(bucketManifests)

		epochs := epochsOf(tx, m.Key)
		if !slices.Contains(epochs, m.Epoch) {
			epochs = append(epochs, m.Epoch)
			slices.Sort(epochs)
		}
		var drop []uint64
		if len(epochs) > s.cfg.Keep {
			for _, e := range epochs[:len(epochs)-s.cfg.Keep] {
				if !s.isPinned(p, m.Key, e) {
					drop = append(drop, e)
				}
			}
		}
		if slices.Contains(drop, m.Epoch) {
			return errors.New("it is older than the newest " + itoa(uint64(s.cfg.Keep)) + " epochs kept")
		}

		if err := fail("commit:chunks"); err != nil {
			return err
		}
		bad := s.badSnapshot()
		placed := make(map[Hash]chunkLoc, len(p.jobs))
		var ours, tail []int // values this capture stores; of which not written by an early batch
		for i := range p.jobs {
			j := &p.jobs[i]
			if _, isBad := bad[j.hash]; !isBad && refs.Get(j.hash[:]) != nil {
				if p.locs[i].seg != 0 {
					// Stored meanwhile: our copy is freed after the commit.
					garbage = append(garbage, p.locs[i])
				}
				continue
			}
			if j.dropped {
				// Let go of by a batch: its chunk was stored, and its
				// epoch went since (deleted).
				return &errMissing{j.hash}
			}
			ours = append(ours, i)
			if p.locs[i].seg == 0 {
				tail = append(tail, i)
			}
		}
		if err := s.writeValues(p, tail); err != nil {
			return err
		}
		// The segment syncs while the rest of the transaction is built, as
		// does a replica's share of the replica segment (ReplicaIn.Commit
		// started it); they must be durable before the transaction commits.
		synced := make(chan error, 1)
		go func() {
			err := s.segs.sync()
			if rerr := p.rep.synced(); err == nil {
				err = rerr
			}
			synced <- err
		}()
		defer func() {
			if err := <-synced; err != nil && txErr == nil {
				txErr = err
			}
		}()
		for _, i := range ours {
			j := &p.jobs[i]
			if _, isBad := bad[j.hash]; isBad {
				rewritten = append(rewritten, j.hash)
			}
			placed[j.hash] = p.locs[i]
			newBytes += int64(p.locs[i].size)
		}
		if err := s.segs.record(tx); err != nil {
			return err
		}
		if err := p.rep.record(tx); err != nil {
			return err
		}

		deltas := make(refDeltas, len(m.Chunks))
		deltas.add(1, m.Chunks, m.FileChunks)
		newSet := make([]Hash, 0, len(deltas))
		for h := range deltas {
			newSet = append(newSet, h)
		}
		mk := manifestKey(m.Key, m.Epoch)
		needSweep := false
		if old := mans.Get(mk); old != nil && !deltas.drop(old) {
			needSweep = true
		}
		if err := fail("commit:gc"); err != nil {
			return err
		}
		commits := tx.Bucket(bucketCommits)
		for _, e := range drop {
			dk := manifestKey(m.Key, e)
			if !deltas.drop(mans.Get(dk)) {
				needSweep = true
			}
			if err := mans.Delete(dk); err != nil {
				return err
			}
			// A commit record of the epoch names a checkpoint that is no
			// longer whole: it goes with it (CommitJob prunes the records
			// only when the next one is written, which may never come).
			if commits != nil {
				if err := commits.Delete(commitKey(m.Key.Job, e)); err != nil {
					return err
				}
			}
		}
		stored, known, err := storedFromBase(tx, p, newSet, placed, len(rewritten) > 0)
		if err != nil {
			return err
		}
		later := func(l chunkLoc) error {
			garbage = append(garbage, l)
			return nil
		}
		missing, err := deltas.apply(tx, placed, later)
		if err != nil {
			return err
		}
		if missing != nil {
			return &errMissing{*missing}
		}

		if !known {
			stored = 0
			for _, h := range newSet {
				r, ok := decodeRef(refs.Get(h[:]))
				if !ok {
					return &errMissing{h}
				}
				stored += r.size
			}
		}
		m.StoredBytes = stored
		m.Stats = p.stats
		m.Stats.BytesStored = newBytes
		m.Stats.WriteDur = time.Since(p.captured)

		if err := fail("commit:manifest"); err != nil {
			return err
		}
		mv := encodeManifest(m)
		m.Sum = binary.LittleEndian.Uint64(mv[len(mv)-manifestTrailer:])
		if err := mans.Put(mk, mv); err != nil {
			return err
		}
		if needSweep {
			if err := sweep(tx, later); err != nil {
				return err
			}
		}
		return fail("commit:tx")
	})
	if err != nil {
		if errors.As(err, new(*errMissing)) {
			// The capture was compared against chunks that are gone: make
			// the next capture of this key a full one.
			ks.loaded, ks.base = true, nil
		}
		return s.writeErr(m, err)
	}
	s.segs.commit()
	p.rep.committed()
	p.stored = newBytes
	p.garbage = garbage
	ks.loaded = true
	ks.base = newBaseState(m)
	if len(rewritten) > 0 {
		s.badMu.Lock()
		for _, h := range rewritten {
			delete(s.bad, h)
		}
		s.badMu.Unlock()
	}
	return nil
}

// writeErr reports a capture that could not be made durable, in one line.
func (s *Store) writeErr(m *Manifest, err error) error {
	var miss *errMissing
	if errors.As(err, &miss) {
		return &Error{Key: m.Key, Epoch: m.Epoch, HasEpoch: true, Kind: ErrNotFound, Cause: err,
			Detail: "not written: " + err.Error()}
	}
	return &Error{Key: m.Key, Epoch: m.Epoch, HasEpoch: true, Kind: ErrWrite, Cause: err,
		Detail: "not written: " + oneLine(err.Error())}
}

func oneLine(s string) string {
	if i := bytes.IndexAny([]byte(s), "\r\n"); i >= 0 {
		return s[:i]
	}
	return s
}

// storedFromBase computes the StoredBytes of p's manifest (newSet: its
// distinct chunks) from its base's: plus the chunks the base does not use,
// minus those only the base uses. Call it before the reference counts
// change. known is false (and the caller sums every chunk) when the base's
// manifest is no longer in the store as it was, or a corrupt chunk was
// rewritten with another size.
func storedFromBase(tx *bolt.Tx, p *Pending, newSet []Hash, placed map[Hash]chunkLoc, rewrote bool) (stored uint64, known bool, err error) {
	b := p.base
	if b == nil || rewrote || b.chunkSize != int(p.m.ChunkSize) {
		return 0, false, nil
	}
	v := tx.Bucket(bucketManifests).Get(manifestKey(p.m.Key, b.epoch))
	if len(v) < manifestTrailer || binary.LittleEndian.Uint64(v[len(v)-manifestTrailer:]) != b.sum {
		return 0, false, nil
	}
	// The base manifest is stored, so each of its chunks has a reference.
	inBase := make(map[Hash]struct{}, len(b.mem)+len(b.files))
	for _, hs := range [][]Hash{b.mem, b.files} {
		for _, h := range hs {
			if !h.IsZero() {
				inBase[h] = struct{}{}
			}
		}
	}
	refs := tx.Bucket(bucketRefs)
	size := func(h Hash) (uint64, error) {
		if loc, ok := placed[h]; ok {
			return loc.size, nil
		}
		r, ok := decodeRef(refs.Get(h[:]))
		if !ok {
			return 0, &errMissing{h}
		}
		return r.size, nil
	}
	stored = b.stored
	for _, h := range newSet {
		if _, ok := inBase[h]; ok {
			delete(inBase, h)
			continue
		}
		n, err := size(h)
		if err != nil {
			return 0, false, err
		}
		stored += n
	}
	for h := range inBase { // used by the base only
		n, err := size(h)
		if err != nil || n > stored {
			return 0, false, nil
		}
		stored -= n
	}
	return stored, true, nil
}
