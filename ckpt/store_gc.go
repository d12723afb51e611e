package ckpt

import (
	"bytes"
	"encoding/binary"
	"slices"

	bolt "go.etcd.io/bbolt"
)

// Chunks are reference counted: the refs bucket maps a chunk hash to the
// number of manifests that use it and the chunk's stored size. A commit
// adds one for each distinct hash of the new manifest and takes one for
// each distinct hash of every manifest it drops, in the same transaction;
// a hash whose count reaches zero loses its chunk. Only the net changes are
// written, so a steady incremental checkpoint touches few entries.
//
// If a manifest to be dropped cannot be decoded its references are unknown;
// the transaction then rebuilds every count by a mark-and-sweep over all
// manifests (sweep).

type refDeltas map[Hash]int

func decodeRef(v []byte) (count, size uint64, ok bool) {
	count, n := binary.Uvarint(v)
	if n <= 0 {
		return 0, 0, false
	}
	size, m := binary.Uvarint(v[n:])
	if m <= 0 {
		return 0, 0, false
	}
	return count, size, true
}

func encodeRef(count, size uint64) []byte {
	b := binary.AppendUvarint(make([]byte, 0, 12), count)
	return binary.AppendUvarint(b, size)
}

// add counts each distinct non-zero hash of hs once, by d.
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

// apply writes the net changes. sizes holds chunks written in this
// transaction. It returns the first hash that should be present but is not.
func (r refDeltas) apply(tx *bolt.Tx, sizes map[Hash]int) (missing *Hash, err error) {
	chunks, refs := tx.Bucket(bucketChunks), tx.Bucket(bucketRefs)
	keys := make([]Hash, 0, len(r))
	for h, d := range r {
		if d != 0 {
			keys = append(keys, h)
		}
	}
	slices.SortFunc(keys, func(a, b Hash) int { return bytes.Compare(a[:], b[:]) })
	for _, h := range keys {
		d := r[h]
		count, size, ok := decodeRef(refs.Get(h[:]))
		if n, written := sizes[h]; written {
			size = uint64(n)
		} else if !ok && d > 0 {
			return &h, nil
		}
		c := int64(count) + int64(d)
		if c <= 0 {
			if err := refs.Delete(h[:]); err != nil {
				return nil, err
			}
			if err := chunks.Delete(h[:]); err != nil {
				return nil, err
			}
			continue
		}
		if err := refs.Put(h[:], encodeRef(uint64(c), size)); err != nil {
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

// sweep rebuilds every reference count from the manifests that decode and
// deletes the chunks none of them uses.
func sweep(tx *bolt.Tx) error {
	counts := make(map[Hash]uint64)
	mb := tx.Bucket(bucketManifests)
	if err := mb.ForEach(func(_, v []byte) error {
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
	if err := tx.DeleteBucket(bucketRefs); err != nil {
		return err
	}
	refs, err := tx.CreateBucket(bucketRefs)
	if err != nil {
		return err
	}
	chunks := tx.Bucket(bucketChunks)
	var dead [][]byte
	c := chunks.Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		var h Hash
		copy(h[:], k)
		if n := counts[h]; n > 0 && len(k) == len(h) {
			if err := refs.Put(h[:], encodeRef(n, uint64(len(v)))); err != nil {
				return err
			}
			continue
		}
		dead = append(dead, append([]byte(nil), k...))
	}
	for _, k := range dead {
		if err := chunks.Delete(k); err != nil {
			return err
		}
	}
	return nil
}

// sweepAll runs sweep in its own transaction.
func (s *Store) sweepAll() error {
	return s.db.Update(sweep)
}
