package ckpt

import (
	"errors"

	bolt "go.etcd.io/bbolt"
)

// storedValue is where a chunk's value is: in the chunks bucket (v, valid
// for the transaction it was found in) or in a segment (loc).
type storedValue struct {
	v   []byte
	loc chunkLoc
}

// storedValueIn finds chunk h's value in tx; false if h is not indexed or
// its value in the chunks bucket is gone.
func storedValueIn(tx *bolt.Tx, h Hash) (storedValue, bool) {
	r, ok := decodeRef(tx.Bucket(bucketRefs).Get(h[:]))
	if !ok {
		return storedValue{}, false
	}
	if r.seg != 0 {
		return storedValue{loc: r.chunkLoc}, true
	}
	v := getChunk(tx.Bucket(bucketChunks), seqKey(r.seq))
	return storedValue{v: v}, v != nil
}

// load returns the value's bytes; a segment's are read into a buffer from
// valBufs, which *buf holds for the caller to put back. The caller holds
// segs.readMu for reading.
func (s *Store) load(sv storedValue, buf **[]byte) ([]byte, error) {
	if sv.loc.seg == 0 {
		return sv.v, nil
	}
	if *buf == nil {
		*buf = s.valBufs.Get().(*[]byte)
	}
	return s.segs.read(sv.loc, *buf)
}

// missingErr refuses m because chunk h's value is not in the store.
func (s *Store) missingErr(m *Manifest, h Hash) error {
	s.markBad(h)
	return epochErr(m.Key, m.Epoch, ErrCorrupt, "chunk %s is missing: checkpoint is corrupt", short(h[:]))
}

// valueErr refuses m because chunk h's value cannot be loaded or decoded.
func (s *Store) valueErr(m *Manifest, h Hash, err error) error {
	if errors.Is(err, errValueMissing) {
		return s.missingErr(m, h)
	}
	s.markBad(h)
	return chunkErr(m, h, err)
}
