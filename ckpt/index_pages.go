package ckpt

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"os"
)

// The index (the bbolt file) is read here with plain reads, never through
// bbolt's memory map: bbolt trusts every page header it follows, so a
// damaged page makes it index out of range (in a goroutine of its own at
// Open, where no recover reaches) and a truncated file makes it fault on
// the map. checkIndex walks the tree bbolt will use and refuses what bbolt
// would trip on; repairIndex (index_repair.go) salvages entries from it.
//
// The layout (bbolt 1.x, native byte order = little-endian here):
//
//	page      id u64 | flags u16 | count u16 | overflow u32 | data
//	meta      magic u32 | version u32 | pageSize u32 | flags u32 | root pgid u64 |
//	          root sequence u64 | freelist pgid u64 | pgid u64 | txid u64 | fnv64a u64
//	branch    count × (pos u32 | ksize u32 | pgid u64), pos from the element
//	leaf      count × (flags u32 | pos u32 | ksize u32 | vsize u32), pos from the element
//	bucket    a leaf value with flag 1: root pgid u64 | sequence u64, then an
//	          inline leaf page if root is 0

const (
	boltPageHeader  = 16
	boltElemSize    = 16
	boltBranchFlag  = 0x01
	boltLeafFlag    = 0x02
	boltMetaFlag    = 0x04
	boltFreeFlag    = 0x10
	boltBucketFlag  = 0x01
	boltBucketHdr   = 16
	boltMagic       = 0xED0CDAED
	boltVersion     = 2
	boltMetaLen     = 56 // up to the checksum
	boltNoFreelist  = ^uint64(0)
	boltMaxPageSize = 1 << 24
)

type boltMeta struct {
	pageSize uint32
	root     uint64
	freelist uint64
	pgid     uint64 // high water mark: pages [0, pgid) exist
	txid     uint64
}

// parseBoltMeta decodes the meta page in b (from the page header on).
func parseBoltMeta(b []byte) (boltMeta, error) {
	if len(b) < boltPageHeader+boltMetaLen+8 {
		return boltMeta{}, fmt.Errorf("meta page is cut short")
	}
	m := b[boltPageHeader:]
	le := binary.LittleEndian
	if le.Uint32(m) != boltMagic {
		return boltMeta{}, fmt.Errorf("meta page has no bbolt magic")
	}
	if le.Uint32(m[4:]) != boltVersion {
		return boltMeta{}, fmt.Errorf("meta page has version %d", le.Uint32(m[4:]))
	}
	h := fnv.New64a()
	h.Write(m[:boltMetaLen])
	if h.Sum64() != le.Uint64(m[boltMetaLen:]) {
		return boltMeta{}, fmt.Errorf("meta page checksum mismatch")
	}
	bm := boltMeta{pageSize: le.Uint32(m[8:]), root: le.Uint64(m[16:]), freelist: le.Uint64(m[32:]),
		pgid: le.Uint64(m[40:]), txid: le.Uint64(m[48:])}
	if bm.pageSize < 1024 || bm.pageSize > boltMaxPageSize || bm.pageSize&(bm.pageSize-1) != 0 {
		return boltMeta{}, fmt.Errorf("meta page names page size %d", bm.pageSize)
	}
	return bm, nil
}

// boltFile reads the pages of a bbolt file.
type boltFile struct {
	f        *os.File
	size     int64
	pageSize int
	metas    []boltMeta // the valid meta pages, newest first
	metaErrs []error    // why the others are not
}

// openBoltFile reads the meta pages of the file at path. It fails only if
// the file cannot be read; a file with no valid meta page has no metas.
func openBoltFile(path string) (*boltFile, error) {
	bf, err := openBoltPages(path, 0)
	if err != nil {
		return nil, err
	}
	f := bf.f
	// Meta page 0 is at 0; page 1 at the page size, which only a valid
	// meta page tells: bbolt tries the powers of two from 1 KiB.
	var m0 boltMeta
	buf := make([]byte, 4096)
	n, _ := f.ReadAt(buf, 0)
	m0, err0 := parseBoltMeta(buf[:n])
	var cands []int64
	if err0 == nil {
		cands = []int64{int64(m0.pageSize)}
	} else {
		for i := range 15 {
			cands = append(cands, 1024<<i)
		}
	}
	var m1 boltMeta
	err1 := fmt.Errorf("meta page 1 is missing")
	for _, off := range cands {
		if off >= bf.size {
			break
		}
		n, _ := f.ReadAt(buf, off)
		if m, err := parseBoltMeta(buf[:n]); err == nil && int64(m.pageSize) == off {
			m1, err1 = m, nil
			break
		} else if err0 == nil {
			err1 = err
		}
	}
	if err0 == nil && err1 == nil && m1.pageSize != m0.pageSize {
		err1 = fmt.Errorf("meta page 1 names another page size")
	}
	switch {
	case err0 == nil && err1 == nil && m1.txid > m0.txid:
		bf.metas = []boltMeta{m1, m0}
	case err0 == nil && err1 == nil:
		bf.metas = []boltMeta{m0, m1}
	case err0 == nil:
		bf.metas = []boltMeta{m0}
	case err1 == nil:
		bf.metas = []boltMeta{m1}
	}
	bf.metaErrs = []error{err0, err1}
	if len(bf.metas) > 0 {
		bf.pageSize = int(bf.metas[0].pageSize)
	}
	return bf, nil
}

// openBoltPages opens the file at path to read pages of pageSize bytes,
// reading no meta page.
func openBoltPages(path string, pageSize int) (*boltFile, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	return &boltFile{f: f, size: fi.Size(), pageSize: pageSize}, nil
}

func (bf *boltFile) close() { bf.f.Close() }

// page reads page id with its overflow pages; hwm is the meta's pgid.
func (bf *boltFile) page(id, hwm uint64) ([]byte, error) {
	b, size, err := bf.pageHead(id, hwm)
	if err != nil || size == len(b) {
		return b, err
	}
	return bf.pageFull(id, b, size)
}

// pageHead reads the first page of page id, checking its header's id and
// that its overflow pages lie in the file; size is its length with them.
func (bf *boltFile) pageHead(id, hwm uint64) (b []byte, size int, err error) {
	if id < 2 || id >= hwm {
		return nil, 0, fmt.Errorf("page %d is outside the file's %d pages", id, hwm)
	}
	ps := int64(bf.pageSize)
	off := int64(id) * ps
	if off+ps > bf.size {
		return nil, 0, fmt.Errorf("page %d is past the end of the file", id)
	}
	b = make([]byte, ps)
	if _, err := bf.f.ReadAt(b, off); err != nil {
		return nil, 0, fmt.Errorf("page %d: %w", id, err)
	}
	if got := binary.LittleEndian.Uint64(b); got != id {
		return nil, 0, fmt.Errorf("page %d is headed as page %d", id, got)
	}
	ov := uint64(binary.LittleEndian.Uint32(b[12:]))
	if ov > 0 && (ov >= hwm-id || off+int64(ov+1)*ps > bf.size) {
		return nil, 0, fmt.Errorf("page %d overflows past the end of the file", id)
	}
	return b, int(int64(ov+1) * ps), nil
}

// pageFull reads the rest of page id, whose first page is head.
func (bf *boltFile) pageFull(id uint64, head []byte, size int) ([]byte, error) {
	full := make([]byte, size)
	copy(full, head)
	if _, err := bf.f.ReadAt(full[len(head):], int64(id)*int64(bf.pageSize)+int64(len(head))); err != nil && err != io.EOF {
		return nil, fmt.Errorf("page %d: %w", id, err)
	}
	return full, nil
}

// boltElem is one element of a branch or leaf page.
type boltElem struct {
	flags uint32
	key   []byte
	value []byte // leaf only; nil if cut
	child uint64 // branch only
	cut   bool   // the value lies past the bytes read (parseBoltHead)
}

// errPageCut: the elements or keys of a page lie past its first page.
var errPageCut = errors.New("page read in part")

// parseBoltPage decodes the header and elements of a branch or leaf page
// held in b, checking that each element lies inside b.
func parseBoltPage(b []byte) (flags uint16, elems []boltElem, err error) {
	return parseBoltHead(b, len(b))
}

// parseBoltHead is parseBoltPage of a page of size bytes of which b holds
// the first: values past b are checked against size and left cut, and
// elements or keys past b are errPageCut.
func parseBoltHead(b []byte, size int) (flags uint16, elems []boltElem, err error) {
	if len(b) < boltPageHeader {
		return 0, nil, fmt.Errorf("page is cut short")
	}
	le := binary.LittleEndian
	flags, count := le.Uint16(b[8:]), int(le.Uint16(b[10:]))
	if flags != boltBranchFlag && flags != boltLeafFlag {
		return flags, nil, fmt.Errorf("page has type %#x, not a branch or leaf", flags)
	}
	if boltPageHeader+count*boltElemSize > size {
		return flags, nil, fmt.Errorf("page lists %d elements, more than it holds", count)
	}
	if boltPageHeader+count*boltElemSize > len(b) {
		return flags, nil, errPageCut
	}
	if flags == boltBranchFlag && count == 0 {
		return flags, nil, fmt.Errorf("branch page has no element")
	}
	elems = make([]boltElem, count)
	for i := range elems {
		at := boltPageHeader + i*boltElemSize
		e := b[at : at+boltElemSize]
		var pos, ksize, vsize uint64
		if flags == boltBranchFlag {
			pos, ksize = uint64(le.Uint32(e)), uint64(le.Uint32(e[4:]))
			elems[i].child = le.Uint64(e[8:])
		} else {
			elems[i].flags = le.Uint32(e)
			pos, ksize, vsize = uint64(le.Uint32(e[4:])), uint64(le.Uint32(e[8:])), uint64(le.Uint32(e[12:]))
		}
		start := uint64(at) + pos
		switch {
		case start+ksize+vsize > uint64(size):
			return flags, nil, fmt.Errorf("element %d lies past the end of its page", i)
		case start+ksize > uint64(len(b)):
			return flags, nil, errPageCut
		case start+ksize+vsize > uint64(len(b)):
			elems[i].cut = true
		default:
			elems[i].value = b[start+ksize : start+ksize+vsize]
		}
		elems[i].key = b[start : start+ksize]
		if i > 0 && bytes.Compare(elems[i-1].key, elems[i].key) >= 0 {
			return flags, nil, fmt.Errorf("element %d is out of key order", i)
		}
	}
	return flags, elems, nil
}
