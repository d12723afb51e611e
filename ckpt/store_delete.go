package ckpt

import (
	bolt "go.etcd.io/bbolt"
)

// Delete drops every epoch of k and the chunks no other epoch uses. A
// capture of k still being written is waited for first, so it cannot
// reappear afterwards.
func (s *Store) Delete(k Key) error {
	ks := s.keyState(k)
	ks.capMu.Lock()
	defer ks.capMu.Unlock()
	s.waitKey(ks)
	var dead []chunkLoc
	err := s.db.Update(func(tx *bolt.Tx) error {
		dead = dead[:0]
		epochs := epochsOf(tx, k)
		if len(epochs) == 0 {
			return keyErr(k, ErrNotFound, "no checkpoints stored")
		}
		if err := dropEpochs(tx, k, epochs, freeIn(tx, &dead)); err != nil {
			return err
		}
		return fail("delete:tx")
	})
	if err == nil {
		s.segs.freeLater(dead)
	}
	ks.mu.Lock()
	ks.loaded, ks.base = true, nil
	ks.mu.Unlock()
	ks.dropScan()
	return deleteErr(k, "delete", err)
}

// DeleteAfter drops every epoch of k newer than epoch, with the chunks no
// other epoch uses, and makes the next Capture of k compare against the
// newest epoch left (epoch itself, when it is stored). The host calls it
// when a run is restored from a checkpoint older than the newest, so that
// a later resume cannot pick a checkpoint of the abandoned run. Captures
// of k still being written are waited for first and dropped too if they
// are newer. Nothing newer than epoch is not an error.
func (s *Store) DeleteAfter(k Key, epoch uint64) error {
	return s.deleteWhere(k, "delete after epoch "+itoa(epoch), func(e uint64) bool { return e > epoch })
}

// DeleteEpoch drops epoch of k, if stored, as DeleteAfter drops the
// newer ones: the checkpoint of a round abandoned while an earlier one,
// whose checkpoints stay, is still being written.
func (s *Store) DeleteEpoch(k Key, epoch uint64) error {
	return s.deleteWhere(k, "delete epoch "+itoa(epoch), func(e uint64) bool { return e == epoch })
}

// deleteWhere drops the epochs of k that drop accepts (what says so in
// an error), with the chunks no other epoch uses, after the captures of
// k being written, and makes the next Capture of k compare against the
// newest epoch left and hash all of memory.
func (s *Store) deleteWhere(k Key, what string, drop func(uint64) bool) error {
	ks := s.keyState(k)
	ks.capMu.Lock()
	defer ks.capMu.Unlock()
	s.waitKey(ks) // no commit of k runs from here on
	var dead []chunkLoc
	err := s.db.Update(func(tx *bolt.Tx) error {
		dead = dead[:0]
		var gone []uint64
		for _, e := range epochsOf(tx, k) {
			if drop(e) {
				gone = append(gone, e)
			}
		}
		if len(gone) == 0 {
			return nil
		}
		if err := dropEpochs(tx, k, gone, freeIn(tx, &dead)); err != nil {
			return err
		}
		return fail("deleteafter:tx")
	})
	if err != nil {
		return deleteErr(k, what, err)
	}
	s.segs.freeLater(dead)
	base := s.loadBase(k)
	ks.mu.Lock()
	ks.loaded, ks.base = true, base
	ks.mu.Unlock()
	ks.dropScan()
	return nil
}

// waitKey waits until the last capture of k handed to the writer is
// durable or has failed. The caller holds ks.capMu, so no new one starts.
func (s *Store) waitKey(ks *keyState) {
	ks.linkMu.Lock()
	p := ks.last
	ks.linkMu.Unlock()
	if p != nil {
		<-p.done
	}
}

// dropEpochs deletes the manifests of the listed epochs of k and the
// chunks only they used, passing their values to free.
func dropEpochs(tx *bolt.Tx, k Key, epochs []uint64, free func(chunkLoc) error) error {
	mans := tx.Bucket(bucketManifests)
	deltas := make(refDeltas)
	needSweep := false
	for _, e := range epochs {
		mk := manifestKey(k, e)
		if !deltas.drop(mans.Get(mk)) {
			needSweep = true
		}
		if err := mans.Delete(mk); err != nil {
			return err
		}
	}
	if _, err := deltas.apply(tx, nil, free); err != nil {
		return err
	}
	if needSweep {
		return sweep(tx, free)
	}
	return nil
}

func deleteErr(k Key, what string, err error) error {
	if err == nil {
		return nil
	}
	if _, ok := err.(*Error); ok {
		return err
	}
	return &Error{Key: k, Kind: ErrWrite, Cause: err, Detail: what + " failed: " + oneLine(err.Error())}
}
