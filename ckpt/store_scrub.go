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
//
// A pass over the store starts again only at a capture of a key that was
// captured since the last pass began: a store that holds several keys (a
// job's ranks on a host, and the replicas of other hosts' ranks) and is
// smaller than ScrubBytes was read whole after each key's capture, several
// times per epoch; now once per round of captures, which still checks
// every value as often as the most often captured key is captured. A pass
// that spans a capture of every key (a store larger than ScrubBytes times
// its keys) goes on as before.

const defaultScrubBytes = 32 << 20

// scrubStep checks the values after s.scrubNext, up to cfg.ScrubBytes of
// them, after a durable capture of key. Writer only.
func (s *Store) scrubStep(key Key) {
	if s.cfg.ScrubBytes < 0 {
		return
	}
	if s.scrubNext == nil { // a pass would start
		if _, again := s.scrubRound[key]; s.scrubRound != nil && !again {
			s.scrubRound[key] = struct{}{} // another key's capture since the last pass began
			return
		}
		s.scrubRound = map[Key]struct{}{}
	}
	s.scrubRound[key] = struct{}{}
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
			s.scrubbed += int64(r.size)
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
