package ckpt

import (
	"slices"

	bolt "go.etcd.io/bbolt"
)

// Latest returns the newest epoch of k that is fully valid: its manifest
// checksum and format are right, it is bound to want, and every chunk is
// present with a correct checksum. The returned errors are the newer epochs
// it refused, newest first, one line each. Fields of want left zero are not
// compared. If no epoch is usable the error wraps ErrNotFound.
func (s *Store) Latest(k Key, want Binding) (*Manifest, []error, error) {
	var refused []error
	var found *Manifest
	s.segs.readMu.RLock()
	defer s.segs.readMu.RUnlock()
	err := s.db.View(func(tx *bolt.Tx) error {
		epochs := epochsOf(tx, k)
		for _, e := range slices.Backward(epochs) {
			m, err := manifestIn(tx, k, e)
			if err == nil {
				err = checkBinding(m, want)
			}
			if err == nil {
				err = s.verifyIn(tx, m)
			}
			if err != nil {
				refused = append(refused, err)
				continue
			}
			found = m
			return nil
		}
		return nil
	})
	if err != nil {
		return nil, refused, err
	}
	if found == nil {
		if len(refused) == 0 {
			return nil, nil, keyErr(k, ErrNotFound, "no checkpoints stored")
		}
		return nil, refused, keyErr(k, ErrNotFound, "no usable checkpoint: all %d stored epochs refused", len(refused))
	}
	return found, refused, nil
}

// checkBinding refuses a checkpoint made by another module build, wazero
// or Go. Zero fields of want match anything.
func checkBinding(m *Manifest, want Binding) error {
	got := m.Binding
	if want.ModuleDigest != ([32]byte{}) && got.ModuleDigest != want.ModuleDigest {
		return epochErr(m.Key, m.Epoch, ErrForeignModule, "made by another build of the module (digest %s, want %s)",
			short(got.ModuleDigest[:]), short(want.ModuleDigest[:]))
	}
	if want.Wazero != "" && got.Wazero != want.Wazero {
		return epochErr(m.Key, m.Epoch, ErrForeignModule, "made with wazero %s, this host runs %s", orUnknown(got.Wazero), want.Wazero)
	}
	if want.Go != "" && got.Go != want.Go {
		return epochErr(m.Key, m.Epoch, ErrForeignModule, "made with Go %s, this host runs %s", orUnknown(got.Go), want.Go)
	}
	return nil
}

func orUnknown(s string) string {
	if s == "" {
		return "(unknown)"
	}
	return s
}

// Verify checks that every chunk of m is present and that its stored bytes
// match their checksum. (ReadMemory additionally checks content hashes.)
func (s *Store) Verify(m *Manifest) error {
	s.segs.readMu.RLock()
	defer s.segs.readMu.RUnlock()
	return s.db.View(func(tx *bolt.Tx) error { return s.verifyIn(tx, m) })
}

// verifyIn checks m's chunks in tx; the caller holds segs.readMu for
// reading.
func (s *Store) verifyIn(tx *bolt.Tx, m *Manifest) error {
	type item struct {
		h  Hash
		sv storedValue
	}
	seen := make(map[Hash]struct{}, len(m.Chunks)+len(m.FileChunks))
	var items []item
	for _, hs := range [][]Hash{m.Chunks, m.FileChunks} {
		for _, h := range hs {
			if h.IsZero() {
				continue
			}
			if _, ok := seen[h]; ok {
				continue
			}
			seen[h] = struct{}{}
			sv, ok := storedValueIn(tx, h)
			if !ok {
				return s.missingErr(m, h)
			}
			items = append(items, item{h, sv})
		}
	}
	return s.parallel(len(items), func(i int) error {
		var buf *[]byte
		v, err := s.load(items[i].sv, &buf)
		if err == nil {
			_, _, err = decodeChunkHeader(v, m.ChunkSize)
		}
		if buf != nil {
			s.valBufs.Put(buf)
		}
		if err != nil {
			return s.valueErr(m, items[i].h, err)
		}
		return nil
	})
}
