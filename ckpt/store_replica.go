package ckpt

import (
	"bytes"
	"fmt"
	"slices"
	"sync"

	bolt "go.etcd.io/bbolt"
)

// A replica is a copy of one checkpoint (a key's epoch) in another host's
// store, so that the checkpoint outlives its host. Only the chunks the
// other store lacks travel:
//
//	source   r := src.ReplicaOf(k, e)          manifest + the chunks it uses
//	replica  need := dst.Missing(r.Chunks)
//	source   src.ReadValues(need, send)         stored values, still compressed
//	replica  dst.AddReplica(r.Manifest, values) one durable commit, like a capture
//
// The values go as they are stored (compressed, with their headers); the
// replica checks that each decodes to its hash before it keeps it.

// Replica is what a source store offers of one checkpoint.
type Replica struct {
	Key      Key
	Epoch    uint64
	Manifest []byte // the manifest's encoding, as stored
	Chunks   []Hash // the distinct, non-zero chunks it uses (memory and files)
}

// ReplicaOf returns the manifest of k's epoch and the chunks it uses. The
// Replica may be shared with other callers: do not change it.
func (s *Store) ReplicaOf(k Key, epoch uint64) (*Replica, error) {
	var r *Replica
	err := s.db.View(func(tx *bolt.Tx) error {
		if r = s.offered.get(k, epoch, tx.Bucket(bucketManifests).Get(manifestKey(k, epoch))); r != nil {
			return nil
		}
		m, err := manifestIn(tx, k, epoch)
		if err != nil {
			return err
		}
		enc := slices.Clone(tx.Bucket(bucketManifests).Get(manifestKey(k, epoch)))
		r = &Replica{Key: k, Epoch: epoch, Manifest: enc, Chunks: distinctChunks(m)}
		return nil
	})
	if err == nil {
		s.offered.put(r)
	}
	return r, err
}

// replicaCache keeps the last two ReplicaOf results of each key, so that
// a source that sends epoch e, then e+1 with e as its base, decodes each
// manifest once. An entry counts only if the manifest stored is still the
// same bytes (an epoch rolled back and captured again is another).
type replicaCache struct {
	mu   sync.Mutex
	last map[Key][2]*Replica
}

// replicaCacheKeys bounds the keys kept: past it, the cache starts afresh.
const replicaCacheKeys = 256

func (c *replicaCache) get(k Key, epoch uint64, stored []byte) *Replica {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, r := range c.last[k] {
		if r != nil && r.Epoch == epoch && bytes.Equal(r.Manifest, stored) {
			return r
		}
	}
	return nil
}

func (c *replicaCache) put(r *Replica) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.last == nil || len(c.last) >= replicaCacheKeys {
		c.last = make(map[Key][2]*Replica)
	}
	rs := c.last[r.Key]
	if rs[0] == r || rs[1] == r {
		return
	}
	c.last[r.Key] = [2]*Replica{rs[1], r}
}

func distinctChunks(m *Manifest) []Hash {
	out, _ := distinctIndex(m)
	return out
}

// distinctIndex lists the distinct, non-zero chunks m uses, memory's
// first, and the place of each in the list.
func distinctIndex(m *Manifest) ([]Hash, map[Hash]int) {
	index := make(map[Hash]int, len(m.Chunks)+len(m.FileChunks))
	out := make([]Hash, 0, len(m.Chunks)+len(m.FileChunks))
	for _, hs := range [][]Hash{m.Chunks, m.FileChunks} {
		for _, h := range hs {
			if _, dup := index[h]; !dup && !h.IsZero() {
				index[h] = len(out)
				out = append(out, h)
			}
		}
	}
	return out, index
}

// Missing returns the chunks of hs that the store holds no sound value
// of: those a replica needs sent.
func (s *Store) Missing(hs []Hash) ([]Hash, error) {
	bad := s.badSnapshot()
	var out []Hash
	err := s.db.View(func(tx *bolt.Tx) error {
		for _, h := range hs {
			if _, isBad := bad[h]; isBad {
				out = append(out, h)
			} else if _, ok := storedValueIn(tx, h); !ok {
				out = append(out, h)
			}
		}
		return nil
	})
	return out, err
}

// ValueSizes returns the stored size of each chunk's value (0 for one the
// store does not hold): the bytes ReadValues would read.
func (s *Store) ValueSizes(hs []Hash) ([]int64, error) {
	out := make([]int64, len(hs))
	err := s.db.View(func(tx *bolt.Tx) error {
		refs := tx.Bucket(bucketRefs)
		for i, h := range hs {
			if r, ok := decodeRef(refs.Get(h[:])); ok {
				out[i] = int64(r.size)
			}
		}
		return nil
	})
	return out, err
}

// ReadValues calls f with the stored value of each chunk of hs, in order.
// The value is valid only during the call.
func (s *Store) ReadValues(hs []Hash, f func(h Hash, value []byte) error) error {
	s.segs.readMu.RLock()
	defer s.segs.readMu.RUnlock()
	return s.db.View(func(tx *bolt.Tx) error {
		var buf *[]byte
		defer func() {
			if buf != nil {
				s.valBufs.Put(buf)
			}
		}()
		for _, h := range hs {
			sv, ok := storedValueIn(tx, h)
			if !ok {
				s.markBad(h)
				return &Error{Kind: ErrNotFound, Detail: fmt.Sprintf("chunk %s is missing from the store", short(h[:]))}
			}
			v, err := s.load(sv, &buf)
			if err != nil {
				s.markBad(h)
				return &Error{Kind: ErrCorrupt, Cause: err, Detail: fmt.Sprintf("chunk %s cannot be read: %v", short(h[:]), err)}
			}
			if err := f(h, v); err != nil {
				return err
			}
		}
		return nil
	})
}

// AddReplica makes a replica durable: the values given (those Missing
// named) and the manifest, in one commit, as a capture's. Each value must
// decode to its hash, and every chunk the manifest uses must be given or
// already held; otherwise nothing is written. The store uses the value
// slices until it returns (without copying them): the caller must not
// change them meanwhile. A replica whose values arrive one by one is
// better received with BeginReplica, which checks and writes them while
// more arrive.
func (s *Store) AddReplica(manifest []byte, values map[Hash][]byte) error {
	r, err := s.BeginReplica(manifest)
	if err != nil {
		return err
	}
	for _, h := range r.chunks {
		if v, ok := values[h]; ok {
			if err := r.add(h, v, false); err != nil {
				break
			}
		}
	}
	return r.Commit()
}
