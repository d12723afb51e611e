package ckpt

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"path/filepath"
	"sync"

	bolt "go.etcd.io/bbolt"
)

// A lazy restore's filler (host/lazy) finds where each chunk's value is
// as it goes, not before the guest starts: looking up every chunk of a
// 4 GiB memory in the index takes ~85 ms, and the guest would wait for
// it. The filler is a process of its own, which cannot open the index
// through bbolt (this process holds its lock), so it reads the index file
// with plain reads (index_pages.go), in a snapshot that this process
// keeps for it: PinIndex holds a bbolt read transaction open, and bbolt
// reuses no page that an open transaction can see, so the pages of that
// snapshot stay as they were however the store is written meanwhile. A
// PlaceReader then looks a chunk's hash up in the snapshot's refs bucket,
// reading each page once.
//
// A pin also holds off bbolt's remapping of the file, which waits for
// every read transaction; bbolt remaps only once the file outgrows its
// mapping (initialMmapSize at Open, far above an index whose values are
// in segments: one holding values itself is not pinned), and then only
// until the fill is done, which needs nothing of this process.
//
// Whatever a lookup finds is only a place to read from: the filler checks
// the value it reads there against the chunk's content hash (from the
// manifest, not the index), so a damaged page can make a chunk fail, and
// never hand the guest other bytes.

// IndexSnapshot is a snapshot of a store's index pinned by PinIndex: what
// a PlaceReader needs to find the chunks' places in it.
type IndexSnapshot struct {
	Path     string // the index file
	SegDir   string // the directory of the segment files
	PageSize uint32
	Pages    uint64 // the snapshot's pages are [0, Pages)
	Refs     uint64 // the page of the root of its refs bucket
}

// IndexPin keeps a snapshot of the index for a PlaceReader in another
// process until Release.
type IndexPin struct {
	Snapshot IndexSnapshot
	s        *Store
	tx       *bolt.Tx
	once     sync.Once
}

// PinIndex checks m's chunk list as MemorySources does and pins a
// snapshot of the index in which a PlaceReader finds the places of m's
// chunks, without looking any up. It returns nil (and no error) where a
// PlaceReader cannot serve: a refs bucket small enough to be kept inline
// in its parent page, or chunk values kept in the index itself (by
// earlier versions); MemorySources then finds every place up front. The
// caller must Release the pin; Close releases those left.
func (s *Store) PinIndex(m *Manifest) (*IndexPin, error) {
	cs := int(m.ChunkSize)
	if cs == 0 || chunkCount(m.MemSize, cs) != uint64(len(m.Chunks)) {
		return nil, epochErr(m.Key, m.Epoch, ErrCorrupt, "manifest lists %d chunks for %d bytes: checkpoint is corrupt", len(m.Chunks), m.MemSize)
	}
	s.closeMu.RLock()
	defer s.closeMu.RUnlock()
	if s.closed {
		return nil, ErrClosed
	}
	tx, err := s.db.Begin(false)
	if err != nil {
		return nil, err
	}
	refs := tx.Bucket(bucketRefs).Root()
	if k, _ := tx.Bucket(bucketChunks).Cursor().First(); refs == 0 || k != nil {
		tx.Rollback()
		return nil, nil
	}
	ps := uint32(s.db.Info().PageSize)
	p := &IndexPin{s: s, tx: tx, Snapshot: IndexSnapshot{
		Path: s.cfg.Path, SegDir: s.segs.dir, PageSize: ps, Pages: uint64(tx.Size()) / uint64(ps), Refs: uint64(refs),
	}}
	s.pinMu.Lock()
	if s.pins == nil {
		s.pins = map[*IndexPin]struct{}{}
	}
	s.pins[p] = struct{}{}
	s.pinMu.Unlock()
	return p, nil
}

// Release lets the store reuse the snapshot's pages; once is enough, more
// do nothing.
func (p *IndexPin) Release() {
	if p == nil {
		return
	}
	p.once.Do(func() {
		p.s.pinMu.Lock()
		delete(p.s.pins, p)
		p.s.pinMu.Unlock()
		p.tx.Rollback()
	})
}

// releasePins releases the pins left at Close: bbolt's Close waits for
// every read transaction.
func (s *Store) releasePins() {
	s.pinMu.Lock()
	left := make([]*IndexPin, 0, len(s.pins))
	for p := range s.pins {
		left = append(left, p)
	}
	s.pinMu.Unlock()
	for _, p := range left {
		p.Release()
	}
}

// SegmentFile is the file of segment seg in the segment directory dir
// (IndexSnapshot.SegDir).
func SegmentFile(dir string, seg uint32) string {
	return filepath.Join(dir, fmt.Sprintf("%06d", seg))
}

// PlaceReader finds chunks' places in a pinned snapshot of an index; safe
// for concurrent use.
type PlaceReader struct {
	bf   *boltFile
	snap IndexSnapshot
	mu   sync.Mutex
	// pages are the pages read so far, up to placeCacheBytes of leaves
	// (branches, a few per hundred leaves, are always kept): a leaf holds
	// the places of some 80 chunks, and a lookup that reads it costs ~7
	// times one that does not (BenchmarkPlaceReader).
	pages    map[uint64][]byte
	branches int // of pages
	leaves   int // bytes of leaves in pages
}

// placeCacheBytes bounds the leaves a PlaceReader keeps: those of the
// refs of 32 GiB of distinct chunks (at ~50 bytes a ref), the filler's
// memory.
var placeCacheBytes = 32 << 20

// maxIndexDepth bounds a lookup's descent: a damaged page naming an
// ancestor as its child would otherwise loop.
const maxIndexDepth = 32

// OpenPlaces opens the snapshot's index file for lookups.
func OpenPlaces(snap IndexSnapshot) (*PlaceReader, error) {
	if snap.PageSize < 1024 || snap.PageSize > boltMaxPageSize || snap.PageSize&(snap.PageSize-1) != 0 {
		return nil, fmt.Errorf("ckpt: index snapshot with page size %d", snap.PageSize)
	}
	bf, err := openBoltPages(snap.Path, int(snap.PageSize))
	if err != nil {
		return nil, err
	}
	return &PlaceReader{bf: bf, snap: snap, pages: map[uint64][]byte{}}, nil
}

// Close closes the index file.
func (r *PlaceReader) Close() { r.bf.close() }

// Find returns where the value of chunk i, of content hash h, is stored
// (in a segment: Seg is never 0). The error of a chunk not found says why
// in one line.
func (r *PlaceReader) Find(i uint32, h Hash) (ChunkSource, error) {
	id := r.snap.Refs
	for range maxIndexDepth {
		b, err := r.page(id)
		if err != nil {
			return ChunkSource{}, fmt.Errorf("index: %v", err)
		}
		e, found, err := boltSearch(b, h[:])
		if err != nil {
			return ChunkSource{}, fmt.Errorf("index page %d: %v", id, err)
		}
		if e.child != 0 {
			id = e.child
			continue
		}
		if !found {
			return ChunkSource{}, fmt.Errorf("chunk %s is missing from the index", short(h[:]))
		}
		ref, ok := decodeRef(e.value)
		if !ok || ref.seg == 0 {
			return ChunkSource{}, fmt.Errorf("chunk %s has a damaged index entry", short(h[:]))
		}
		return ChunkSource{Index: i, Hash: h, Seg: ref.seg, Off: ref.off, Size: ref.size}, nil
	}
	return ChunkSource{}, fmt.Errorf("index: the refs bucket is deeper than %d pages", maxIndexDepth)
}

// page reads page id of the snapshot, or returns it from the pages kept.
func (r *PlaceReader) page(id uint64) ([]byte, error) {
	r.mu.Lock()
	b, ok := r.pages[id]
	r.mu.Unlock()
	if ok {
		return b, nil
	}
	b, err := r.bf.page(id, r.snap.Pages)
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	switch {
	case binary.LittleEndian.Uint16(b[8:]) == boltBranchFlag:
		r.pages[id] = b
		r.branches++
	case r.leaves+len(b) <= placeCacheBytes:
		r.pages[id] = b
		r.leaves += len(b)
	}
	return b, nil
}

// boltSearch looks key up in page b (a branch or a leaf, whole): in a
// leaf, the element holding key (found) or none; in a branch, the element
// naming the child whose keys may hold it (child is set). Every element it
// looks at is checked to lie inside b.
func boltSearch(b, key []byte) (e boltElem, found bool, err error) {
	if len(b) < boltPageHeader {
		return e, false, fmt.Errorf("page is cut short")
	}
	le := binary.LittleEndian
	flags, count := le.Uint16(b[8:]), int(le.Uint16(b[10:]))
	if flags != boltBranchFlag && flags != boltLeafFlag {
		return e, false, fmt.Errorf("page has type %#x, not a branch or leaf", flags)
	}
	if count == 0 && flags == boltBranchFlag || boltPageHeader+count*boltElemSize > len(b) {
		return e, false, fmt.Errorf("page lists %d elements, which it does not hold", count)
	}
	elem := func(i int) (boltElem, error) {
		at := boltPageHeader + i*boltElemSize
		h := b[at : at+boltElemSize]
		var el boltElem
		var pos, ksize, vsize uint64
		if flags == boltBranchFlag {
			pos, ksize, el.child = uint64(le.Uint32(h)), uint64(le.Uint32(h[4:])), le.Uint64(h[8:])
		} else {
			el.flags, pos, ksize, vsize = le.Uint32(h), uint64(le.Uint32(h[4:])), uint64(le.Uint32(h[8:])), uint64(le.Uint32(h[12:]))
		}
		start := uint64(at) + pos
		if start+ksize+vsize > uint64(len(b)) {
			return el, fmt.Errorf("element %d lies past the end of its page", i)
		}
		el.key, el.value = b[start:start+ksize], b[start+ksize:start+ksize+vsize]
		return el, nil
	}
	// The first element whose key is past key (a branch) or not before it
	// (a leaf).
	lo, hi := 0, count
	for lo < hi {
		mid := int(uint(lo+hi) >> 1)
		el, err := elem(mid)
		if err != nil {
			return e, false, err
		}
		c := bytes.Compare(el.key, key)
		if c < 0 || c == 0 && flags == boltBranchFlag {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	if flags == boltBranchFlag {
		e, err = elem(max(lo-1, 0))
		if err == nil && e.child == 0 {
			err = fmt.Errorf("branch names page 0")
		}
		return e, false, err
	}
	if lo == count {
		return e, false, nil
	}
	if e, err = elem(lo); err != nil || !bytes.Equal(e.key, key) || e.flags&boltBucketFlag != 0 {
		return boltElem{}, false, err
	}
	return e, true, nil
}
