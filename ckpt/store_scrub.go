package ckpt

import (
	"bytes"

	bolt "go.etcd.io/bbolt"
)

// Kept epochs share every chunk that did not change between them, so one
// damaged chunk value can leave no epoch usable; only one copy of each
// value is stored. But the guest usually still holds that chunk in its
// memory: after each durable capture the writer checks the next
// Config.ScrubBytes of stored values (their payload checksums), in hash
// order and wrapping around, and marks a damaged one, so that the next
// capture whose memory holds that chunk writes it again; the epochs that
// use it are then whole again.

const defaultScrubBytes = 32 << 20

// scrubStep checks the values after s.scrubNext, up to cfg.ScrubBytes of
// them. Writer only.
func (s *Store) scrubStep() {
	if s.cfg.ScrubBytes < 0 {
		return
	}
	s.segs.readMu.RLock()
	defer s.segs.readMu.RUnlock()
	var buf *[]byte
	defer func() {
		if buf != nil {
			s.valBufs.Put(buf)
		}
	}()
	_ = s.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketRefs).Cursor()
		k, v := c.Seek(s.scrubNext)
		if k == nil || s.scrubNext == nil {
			k, v = c.First()
		}
		var done int64
		for ; k != nil && done < s.cfg.ScrubBytes; k, v = c.Next() {
			r, ok := decodeRef(v)
			if !ok || len(k) != len(Hash{}) {
				continue
			}
			h := Hash(k)
			done += int64(r.size)
			sv, ok := storedValueIn(tx, h)
			if !ok {
				s.markBad(h)
				continue
			}
			val, err := s.load(sv, &buf)
			if err == nil {
				_, _, err = decodeChunkHeader(val, maxChunkSize)
			}
			if err != nil {
				s.markBad(h)
			}
		}
		if k == nil {
			s.scrubNext = nil
		} else {
			s.scrubNext = bytes.Clone(k)
		}
		return nil
	})
}
