package ckpt

import (
	"errors"
	"strings"
	"sync"
	"sync/atomic"

	bolt "go.etcd.io/bbolt"
)

// Keys lists every key with at least one stored epoch.
func (s *Store) Keys() ([]Key, error) {
	var out []Key
	err := s.db.View(func(tx *bolt.Tx) error {
		out = keysIn(tx)
		return nil
	})
	return out, err
}

// Epochs lists the stored epochs of k, oldest first. An epoch whose
// manifest does not decode is listed with only Epoch (and Format, if known).
func (s *Store) Epochs(k Key) ([]Info, error) {
	var out []Info
	err := s.db.View(func(tx *bolt.Tx) error {
		mans := tx.Bucket(bucketManifests)
		for _, e := range epochsOf(tx, k) {
			v := mans.Get(manifestKey(k, e))
			m, err := decodeManifest(v)
			if err != nil {
				info := Info{Epoch: e}
				if len(v) >= manifestHeaderLen && string(v[:4]) == manifestMagic {
					info.Format = uint32(v[4]) | uint32(v[5])<<8 | uint32(v[6])<<16 | uint32(v[7])<<24
				}
				out = append(out, info)
				continue
			}
			out = append(out, Info{Epoch: e, Created: m.Created, MemSize: m.MemSize,
				StoredBytes: m.StoredBytes, NewBytes: uint64(m.Stats.BytesStored),
				Binding: m.Binding, Format: m.Format})
		}
		return nil
	})
	if err == nil && len(out) == 0 {
		return nil, keyErr(k, ErrNotFound, "no checkpoints stored")
	}
	return out, err
}

// Manifest reads the manifest of one epoch, checking its checksum and
// format version.
func (s *Store) Manifest(k Key, epoch uint64) (*Manifest, error) {
	var m *Manifest
	err := s.db.View(func(tx *bolt.Tx) error {
		var err error
		m, err = manifestIn(tx, k, epoch)
		return err
	})
	return m, err
}

func manifestIn(tx *bolt.Tx, k Key, epoch uint64) (*Manifest, error) {
	v := tx.Bucket(bucketManifests).Get(manifestKey(k, epoch))
	if v == nil {
		return nil, epochErr(k, epoch, ErrNotFound, "no such checkpoint")
	}
	m, err := decodeManifest(v)
	if err != nil {
		return nil, wrapDecode(k, epoch, err)
	}
	if m.Key != k || m.Epoch != epoch {
		return nil, epochErr(k, epoch, ErrCorrupt, "manifest names job %q worker %d epoch %d: checkpoint is corrupt", m.Job, m.Worker, m.Epoch)
	}
	return m, nil
}

// wrapDecode turns a decoder's refusal into an *Error about one epoch.
func wrapDecode(k Key, epoch uint64, err error) error {
	var de *decodeError
	if !errors.As(err, &de) {
		return epochErr(k, epoch, ErrCorrupt, "%v", err)
	}
	switch de.kind {
	case ErrCorrupt:
		return epochErr(k, epoch, ErrCorrupt, "%s: checkpoint is corrupt", de.msg)
	case ErrTruncated:
		return epochErr(k, epoch, ErrTruncated, "%s", de.msg)
	default:
		return epochErr(k, epoch, de.kind, "%s", de.msg)
	}
}

// ReadMemory fills dst (at least m.MemSize bytes, assumed zeroed) with the
// checkpoint's memory, decompressing chunks in parallel and checking each
// chunk's content hash. Zero chunks are left untouched.
func (s *Store) ReadMemory(m *Manifest, dst []byte) error {
	if uint64(len(dst)) < m.MemSize {
		return epochErr(m.Key, m.Epoch, ErrNotFound, "ReadMemory: destination is %d bytes, memory is %d", len(dst), m.MemSize)
	}
	return s.readChunks(m, m.Chunks, dst[:m.MemSize])
}

// ReadFiles returns the checkpoint's file-delta blob.
func (s *Store) ReadFiles(m *Manifest) ([]byte, error) {
	if m.FileChunks == nil {
		return cloneBytes(m.Files), nil
	}
	dst := make([]byte, m.FilesLen)
	if err := s.readChunks(m, m.FileChunks, dst); err != nil {
		return nil, err
	}
	return dst, nil
}

// readChunks decodes hashes into dst, chunk i at i*ChunkSize.
func (s *Store) readChunks(m *Manifest, hashes []Hash, dst []byte) error {
	cs := int(m.ChunkSize)
	if cs == 0 || chunkCount(uint64(len(dst)), cs) != uint64(len(hashes)) {
		return epochErr(m.Key, m.Epoch, ErrCorrupt, "manifest lists %d chunks for %d bytes: checkpoint is corrupt", len(hashes), len(dst))
	}
	s.segs.readMu.RLock()
	defer s.segs.readMu.RUnlock()
	return s.db.View(func(tx *bolt.Tx) error {
		type item struct {
			i  int
			sv storedValue
		}
		items := make([]item, 0, len(hashes))
		for i, h := range hashes {
			if h.IsZero() {
				continue
			}
			sv, ok := storedValueIn(tx, h)
			if !ok {
				return s.missingErr(m, h)
			}
			items = append(items, item{i, sv})
		}
		return s.parallel(len(items), func(n int) error {
			it := items[n]
			off := it.i * cs
			end := min(off+cs, len(dst))
			h := hashes[it.i]
			var buf *[]byte
			defer func() {
				if buf != nil {
					s.valBufs.Put(buf)
				}
			}()
			v, err := s.load(it.sv, &buf)
			if err != nil {
				return s.valueErr(m, h, err)
			}
			scratch := s.scratch.Get().(*[]byte)
			defer s.scratch.Put(scratch)
			if err := decodeChunk(v, dst[off:end:end], h, s.dec, *scratch); err != nil {
				return s.valueErr(m, h, err)
			}
			return nil
		})
	})
}

func chunkErr(m *Manifest, h Hash, err error) error {
	msg := strings.TrimPrefix(err.Error(), "chunk ")
	msg = strings.TrimPrefix(msg, short(h[:])+" ")
	var de *decodeError
	if errors.As(err, &de) && de.kind == ErrTruncated {
		return epochErr(m.Key, m.Epoch, ErrTruncated, "chunk %s %s", short(h[:]), msg)
	}
	return epochErr(m.Key, m.Epoch, ErrCorrupt, "chunk %s %s: checkpoint is corrupt", short(h[:]), msg)
}

// parallel runs f(0..n-1) on cfg.Workers goroutines and returns the first
// error; after an error the remaining items are skipped.
func (s *Store) parallel(n int, f func(int) error) error {
	w := min(s.cfg.Workers, n)
	if w <= 1 {
		for i := range n {
			if err := f(i); err != nil {
				return err
			}
		}
		return nil
	}
	var next atomic.Int64
	var once sync.Once
	var first error
	var stop atomic.Bool
	var wg sync.WaitGroup
	for range w {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop.Load() {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				if err := f(i); err != nil {
					once.Do(func() { first = err })
					stop.Store(true)
					return
				}
			}
		}()
	}
	wg.Wait()
	return first
}
