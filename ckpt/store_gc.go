package ckpt

import (
	"bytes"
	"encoding/binary"
	"slices"

	bolt "go.etcd.io/bbolt"
)

// Chunk values live in the chunks bucket under an 8-byte sequence number,
// so that every capture appends at the end of the B+tree: keyed by content
// hash, new chunks would land between old ones and bbolt would rewrite the
// old values sharing their leaf pages (measured: 2.5-5.7x the bytes).
// The refs bucket is the content index: chunk hash → (number of manifests
// that use it, stored size, and where the value is: a segment and offset
// (segment.go) or, for values written by earlier versions, a sequence
// number in the chunks bucket).
//
// A commit adds one for each distinct hash of the new manifest and takes
// one for each distinct hash of every manifest it drops, in the same
// transaction; a chunk whose count reaches zero is deleted. Only the net
// changes are written, so a steady incremental checkpoint touches few
// entries. If a manifest to be dropped cannot be decoded its references are
// unknown; the transaction then rebuilds every count by a mark-and-sweep
// over all manifests (sweep).

type refDeltas map[Hash]int

// chunkLoc is where a chunk value is stored: in segment seg at off, or, if
// seg is 0, in the chunks bucket under seq.
type chunkLoc struct {
	seq  uint64
	seg  uint32
	off  uint64
	size uint64
}

type ref struct {
	count uint64
	chunkLoc
}

func seqKey(seq uint64) []byte { return binary.BigEndian.AppendUint64(make([]byte, 0, 8), seq) }

func parseSeqKey(k []byte) uint64 {
	if len(k) != 8 {
		return 0
	}
	return binary.BigEndian.Uint64(k)
}

// A reference is count uvarint | size uvarint, then either seq u64 (a value
// in the chunks bucket) or seg u32 | off u64 (a value in a segment), all
// big-endian.
func decodeRef(v []byte) (ref, bool) {
	var r ref
	var n, m int
	if r.count, n = binary.Uvarint(v); n <= 0 {
		return r, false
	}
	if r.size, m = binary.Uvarint(v[n:]); m <= 0 {
		return r, false
	}
	switch rest := v[n+m:]; len(rest) {
	case 8:
		r.seq = binary.BigEndian.Uint64(rest)
	case 12:
		r.seg, r.off = binary.BigEndian.Uint32(rest), binary.BigEndian.Uint64(rest[4:])
		if r.seg == 0 {
			return r, false
		}
	default:
		return r, false
	}
	return r, true
}

func encodeRef(r ref) []byte {
	b := binary.AppendUvarint(make([]byte, 0, 28), r.count)
	b = binary.AppendUvarint(b, r.size)
	if r.seg != 0 {
		b = binary.BigEndian.AppendUint32(b, r.seg)
		return binary.BigEndian.AppendUint64(b, r.off)
	}
	return binary.BigEndian.AppendUint64(b, r.seq)
}

// add counts each distinct non-zero hash of the lists once, by d.
func (r refDeltas) add(d int, lists ...[]Hash) {
	seen := make(map[Hash]struct{}, len(lists[0]))
	for _, hs := range lists {
		for _, h := range hs {
			if h.IsZero() {
				continue
			}
			if _, ok := seen[h]; ok {
				continue
			}
			seen[h] = struct{}{}
			r[h] += d
		}
	}
}

// drop removes a manifest value's references; false if it cannot be
// decoded (its references are then unknown).
func (r refDeltas) drop(v []byte) bool {
	m, err := decodeManifest(v)
	if err != nil {
		return false
	}
	r.add(-1, m.Chunks, m.FileChunks)
	return true
}

// apply writes the net changes. placed holds the chunks stored by this
// commit (new ones, or rewrites of chunks found corrupt). It returns the
// first hash that should be present but is not. The values of chunks no
// longer referenced are passed to free, which deletes them now or later:
// once its reference is gone a value is an orphan, which Open deletes
// (sweepOrphans) or punches out (openSegments) if nothing else does.
func (r refDeltas) apply(tx *bolt.Tx, placed map[Hash]chunkLoc, free func(chunkLoc) error) (missing *Hash, err error) {
	refs := tx.Bucket(bucketRefs)
	keys := make([]Hash, 0, len(r))
	for h, d := range r {
		if _, ok := placed[h]; d != 0 || ok {
			keys = append(keys, h)
		}
	}
	slices.SortFunc(keys, func(a, b Hash) int { return bytes.Compare(a[:], b[:]) })
	for _, h := range keys {
		d := r[h]
		old, ok := decodeRef(refs.Get(h[:]))
		cur := old
		loc, put := placed[h]
		if put {
			if ok && old.chunkLoc != loc {
				// A corrupt value is replaced by the fresh copy.
				if err := free(old.chunkLoc); err != nil {
					return nil, err
				}
			}
			if !ok {
				cur.count = 0
			}
			cur.chunkLoc = loc
		} else if !ok && d > 0 {
			return &h, nil
		}
		c := int64(cur.count) + int64(d)
		if c <= 0 {
			if err := refs.Delete(h[:]); err != nil {
				return nil, err
			}
			if ok || put {
				if err := free(cur.chunkLoc); err != nil {
					return nil, err
				}
			}
			continue
		}
		cur.count = uint64(c)
		if err := refs.Put(h[:], encodeRef(cur)); err != nil {
			return nil, err
		}
	}
	return nil, nil
}

// epochsOf lists the stored epochs of k in order.
func epochsOf(tx *bolt.Tx, k Key) []uint64 {
	prefix := manifestPrefix(nil, k)
	var out []uint64
	c := tx.Bucket(bucketManifests).Cursor()
	for key, _ := c.Seek(prefix); key != nil && bytes.HasPrefix(key, prefix); key, _ = c.Next() {
		if kk, e, ok := parseManifestKey(key); ok && kk == k {
			out = append(out, e)
		}
	}
	return out
}

// sweep recounts every reference from the manifests that decode, deletes
// the chunks none of them uses (passing their segment values to free), and
// then any bbolt value no index entry names.
func sweep(tx *bolt.Tx, free func(chunkLoc) error) error {
	counts := make(map[Hash]uint64)
	if err := tx.Bucket(bucketManifests).ForEach(func(_, v []byte) error {
		m, err := decodeManifest(v)
		if err != nil {
			return nil
		}
		seen := make(map[Hash]struct{}, len(m.Chunks))
		for _, hs := range [][]Hash{m.Chunks, m.FileChunks} {
			for _, h := range hs {
				if _, ok := seen[h]; !ok && !h.IsZero() {
					seen[h] = struct{}{}
					counts[h]++
				}
			}
		}
		return nil
	}); err != nil {
		return err
	}
	refs := tx.Bucket(bucketRefs)
	type upd struct {
		k []byte
		v []byte // nil: delete
	}
	var updates []upd
	c := refs.Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		var h Hash
		copy(h[:], k)
		r, ok := decodeRef(v)
		n := counts[h]
		switch {
		case !ok || n == 0 || len(k) != len(h):
			updates = append(updates, upd{k: bytes.Clone(k)})
			if ok && r.seg != 0 {
				if err := free(r.chunkLoc); err != nil {
					return err
				}
			}
		case r.count != n:
			r.count = n
			updates = append(updates, upd{k: bytes.Clone(k), v: encodeRef(r)})
		}
	}
	for _, u := range updates {
		var err error
		if u.v == nil {
			err = refs.Delete(u.k)
		} else {
			err = refs.Put(u.k, u.v)
		}
		if err != nil {
			return err
		}
	}
	_, err := sweepOrphans(tx)
	return err
}

// freeIn frees the values whose last reference tx drops: one in the
// chunks bucket at once, one in a segment by adding it to later, for the
// caller to punch out once tx has committed (segments.free).
func freeIn(tx *bolt.Tx, later *[]chunkLoc) func(chunkLoc) error {
	chunks := tx.Bucket(bucketChunks)
	return func(l chunkLoc) error {
		if l.seg == 0 {
			return deleteChunk(chunks, seqKey(l.seq))
		}
		*later = append(*later, l)
		return nil
	}
}

// sweepAll runs sweep in its own transaction.
func (s *Store) sweepAll() error {
	var dead []chunkLoc
	err := s.db.Update(func(tx *bolt.Tx) error {
		dead = dead[:0]
		return sweep(tx, freeIn(tx, &dead))
	})
	if err == nil {
		s.segs.freeLater(dead)
	}
	return err
}
