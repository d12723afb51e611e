package ckpt

import (
	bolt "go.etcd.io/bbolt"
)

// EpochCheck is Scrub's verdict on one checkpoint: Err is nil if it is
// usable, else why not (an *Error wrapping a sentinel).
type EpochCheck struct {
	KeyEpoch
	Err error
}

// ScrubResult is what Scrub found.
type ScrubResult struct {
	Epochs  []EpochCheck // every stored checkpoint, in key and epoch order
	Chunks  int          // distinct chunks read
	Damaged int          // of them, missing or not decoding to their hash
}

// Scrub reads every manifest and every chunk of the store, decompressing
// each chunk and checking its content hash (each shared chunk once), and
// says which checkpoints are usable. A damaged chunk is marked, so that
// the next capture that holds its content writes it again.
func (s *Store) Scrub() (*ScrubResult, error) {
	res := &ScrubResult{}
	s.segs.readMu.RLock()
	defer s.segs.readMu.RUnlock()
	err := s.db.View(func(tx *bolt.Tx) error {
		type epoch struct {
			m   *Manifest
			idx int // in res.Epochs
		}
		var eps []epoch
		var hashes []Hash
		where := make(map[Hash]*Manifest) // a manifest using each hash, for messages
		for _, k := range keysIn(tx) {
			for _, e := range epochsOf(tx, k) {
				res.Epochs = append(res.Epochs, EpochCheck{KeyEpoch: KeyEpoch{k, e}})
				m, err := manifestIn(tx, k, e)
				if err != nil {
					res.Epochs[len(res.Epochs)-1].Err = err
					continue
				}
				eps = append(eps, epoch{m, len(res.Epochs) - 1})
				for _, hs := range [][]Hash{m.Chunks, m.FileChunks} {
					for _, h := range hs {
						if _, ok := where[h]; !ok && !h.IsZero() {
							where[h] = m
							hashes = append(hashes, h)
						}
					}
				}
			}
		}
		bad := make([]error, len(hashes))
		s.parallel(len(hashes), func(i int) error {
			bad[i] = s.scrubChunk(tx, where[hashes[i]], hashes[i])
			return nil
		})
		res.Chunks = len(hashes)
		badOf := make(map[Hash]error)
		for i, err := range bad {
			if err != nil {
				badOf[hashes[i]] = err
				res.Damaged++
			}
		}
		for _, ep := range eps {
			for _, hs := range [][]Hash{ep.m.Chunks, ep.m.FileChunks} {
				for _, h := range hs {
					if err, ok := badOf[h]; ok && res.Epochs[ep.idx].Err == nil {
						res.Epochs[ep.idx].Err = rekey(err, ep.m)
					}
				}
			}
		}
		return nil
	})
	return res, err
}

// scrubChunk reads and decodes chunk h (which m uses) in full.
func (s *Store) scrubChunk(tx *bolt.Tx, m *Manifest, h Hash) error {
	sv, ok := storedValueIn(tx, h)
	if !ok {
		return s.missingErr(m, h)
	}
	var buf *[]byte
	defer func() {
		if buf != nil {
			s.valBufs.Put(buf)
		}
	}()
	v, err := s.load(sv, &buf)
	if err == nil {
		var hd chunkHeader
		if hd, _, err = decodeChunkHeader(v, m.ChunkSize); err == nil {
			err = decodeChunk(v, make([]byte, hd.rawLen), h, s.dec, nil)
		}
	}
	if err != nil {
		return s.valueErr(m, h, err)
	}
	return nil
}

// rekey restates a chunk's refusal, found through one manifest, for m.
func rekey(err error, m *Manifest) error {
	if e, ok := err.(*Error); ok {
		c := *e
		c.Key, c.Epoch = m.Key, m.Epoch
		return &c
	}
	return err
}

// keysIn lists every key with a stored epoch.
func keysIn(tx *bolt.Tx) []Key {
	var out []Key
	c := tx.Bucket(bucketManifests).Cursor()
	for key, _ := c.First(); key != nil; key, _ = c.Next() {
		k, _, ok := parseManifestKey(key)
		if ok && (len(out) == 0 || out[len(out)-1] != k) {
			out = append(out, k)
		}
	}
	return out
}
