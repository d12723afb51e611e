package ckpt

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// boltWalk walks the tree of one meta page of a bbolt file. Strict, it
// stops at the first damaged page; otherwise it skips what it cannot read
// and counts it in damaged, so that repairIndex salvages the rest.
type boltWalk struct {
	bf      *boltFile
	hwm     uint64
	strict  bool
	seen    map[uint64]bool
	damaged []error
	// visit is called with the names of the buckets holding each entry
	// that is not a bucket, outermost first.
	visit func(path [][]byte, key, value []byte)
}

var errWalkStop = errors.New("stop")

func (w *boltWalk) fail(err error) error {
	w.damaged = append(w.damaged, err)
	if w.strict {
		return errWalkStop
	}
	return nil
}

// bucket walks a bucket whose header is root (a page number, or 0 with
// the bucket's inline page in inline).
func (w *boltWalk) bucket(path [][]byte, root uint64, inline []byte) error {
	if root != 0 {
		return w.page(path, root, nil, nil)
	}
	flags, elems, err := parseBoltPage(inline)
	if err == nil && flags != boltLeafFlag {
		err = fmt.Errorf("inline page is not a leaf")
	}
	if err != nil {
		return w.fail(fmt.Errorf("bucket %q: %v", bytes.Join(path, []byte("/")), err))
	}
	return w.leaf(path, elems)
}

// page walks the subtree at page id, whose keys must lie in [lo, hi).
func (w *boltWalk) page(path [][]byte, id uint64, lo, hi []byte) error {
	if w.seen[id] {
		return w.fail(fmt.Errorf("page %d is referenced twice", id))
	}
	b, size, err := w.bf.pageHead(id, w.hwm)
	if err != nil {
		return w.fail(err)
	}
	for i := range uint64(size / w.bf.pageSize) {
		if w.seen[id+i] {
			return w.fail(fmt.Errorf("page %d is referenced twice", id+i))
		}
		w.seen[id+i] = true
	}
	// The overflow pages are read only if an element, a key or a value
	// that is looked at lies in them: a check reads only the first page
	// of each chunk value that earlier versions kept in bbolt.
	flags, elems, err := parseBoltHead(b, size)
	if err == errPageCut || err == nil && w.needsValues(elems) {
		if b, err = w.bf.pageFull(id, b, size); err != nil {
			return w.fail(err)
		}
		flags, elems, err = parseBoltPage(b)
	}
	if err == nil && len(elems) > 0 && (lo != nil && bytes.Compare(elems[0].key, lo) < 0 ||
		hi != nil && bytes.Compare(elems[len(elems)-1].key, hi) >= 0) {
		err = fmt.Errorf("keys out of their parent's range")
	}
	if err != nil {
		return w.fail(fmt.Errorf("page %d: %v", id, err))
	}
	if flags == boltLeafFlag {
		return w.leaf(path, elems)
	}
	for i, e := range elems {
		next := hi
		if i+1 < len(elems) {
			next = elems[i+1].key
		}
		if err := w.page(path, e.child, e.key, next); err != nil {
			return err
		}
	}
	return nil
}

// needsValues reports whether the walk looks at a value of elems that
// was left cut: every value if it visits them, else a bucket's header.
func (w *boltWalk) needsValues(elems []boltElem) bool {
	for _, e := range elems {
		if e.cut && (w.visit != nil || e.flags&boltBucketFlag != 0) {
			return true
		}
	}
	return false
}

func (w *boltWalk) leaf(path [][]byte, elems []boltElem) error {
	for _, e := range elems {
		if e.flags&boltBucketFlag == 0 {
			if w.visit != nil {
				w.visit(path, e.key, e.value)
			}
			continue
		}
		v := e.value
		if len(v) < boltBucketHdr {
			if err := w.fail(fmt.Errorf("bucket %q has a short header", e.key)); err != nil {
				return err
			}
			continue
		}
		sub := append(path[:len(path):len(path)], e.key)
		if err := w.bucket(sub, binary.LittleEndian.Uint64(v), v[boltBucketHdr:]); err != nil {
			return err
		}
	}
	return nil
}

// freelist checks the freelist page of a file written without
// NoFreelistSync: its page ids must exist and be unused by the tree.
func (w *boltWalk) freelist(id uint64) error {
	b, err := w.bf.page(id, w.hwm)
	if err != nil {
		return w.fail(fmt.Errorf("freelist: %v", err))
	}
	if flags := binary.LittleEndian.Uint16(b[8:]); flags != boltFreeFlag {
		return w.fail(fmt.Errorf("freelist page %d has type %#x", id, flags))
	}
	at, n := boltPageHeader, uint64(binary.LittleEndian.Uint16(b[10:]))
	if n == 0xFFFF {
		n, at = binary.LittleEndian.Uint64(b[boltPageHeader:]), boltPageHeader+8
	}
	if n > uint64(len(b)-at)/8 {
		return w.fail(fmt.Errorf("freelist page %d lists more ids than it holds", id))
	}
	for i := range n {
		free := binary.LittleEndian.Uint64(b[at+int(i)*8:])
		if free < 2 || free >= w.hwm || w.seen[free] {
			return w.fail(fmt.Errorf("freelist page %d frees page %d, which is in use or not in the file", id, free))
		}
	}
	return nil
}

// checkBolt checks the tree bbolt will open: that of the newest valid
// meta page. It returns the first damage found, or nil.
func checkBolt(bf *boltFile) error {
	if len(bf.metas) == 0 {
		return fmt.Errorf("no valid meta page (%v; %v)", bf.metaErrs[0], bf.metaErrs[1])
	}
	m := bf.metas[0]
	if uint64(bf.size)/uint64(m.pageSize) < m.pgid {
		return fmt.Errorf("file is %d bytes, shorter than its %d pages", bf.size, m.pgid)
	}
	w := &boltWalk{bf: bf, hwm: m.pgid, strict: true, seen: make(map[uint64]bool)}
	if w.page(nil, m.root, nil, nil); len(w.damaged) > 0 {
		return w.damaged[0]
	}
	if m.freelist != boltNoFreelist {
		if w.freelist(m.freelist); len(w.damaged) > 0 {
			return w.damaged[0]
		}
	}
	return nil
}

// checkIndex refuses a damaged index before bbolt opens it. A file that
// does not exist or is empty is fine: bbolt creates it.
func checkIndex(path string) error {
	fi, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) || err == nil && fi.Size() == 0 {
		return nil
	}
	if err != nil {
		return fmt.Errorf("ckpt: open store %s: %w", path, err)
	}
	bf, err := openBoltFile(path)
	if err != nil {
		return fmt.Errorf("ckpt: open store %s: %w", path, err)
	}
	defer bf.close()
	if err := checkBolt(bf); err != nil {
		return indexDamaged(path, err)
	}
	return nil
}

func indexDamaged(path string, err error) error {
	return &storeError{kind: ErrIndexDamaged, msg: fmt.Sprintf(
		"ckpt: checkpoint index %s is damaged (%v): run `librahost ckpt repair --state %s` to rebuild it from what is readable",
		path, err, filepath.Dir(path))}
}

// checkIndexLocked runs checkIndex under the lock bbolt takes, so that
// it never reads a file another process is writing; it releases the lock
// for bbolt to take.
func checkIndexLocked(path string) error {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("ckpt: open store %s: %w", path, err)
	}
	defer f.Close()
	if err := lockFile(f, path); err != nil {
		return err
	}
	defer syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
	return checkIndex(path)
}

// flockWait takes an exclusive lock on f, waiting up to openTimeout as
// bbolt does; ErrInUse if another holds it.
func flockWait(f *os.File) error {
	deadline := time.Now().Add(openTimeout)
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		switch {
		case err == nil:
			return nil
		case err != syscall.EWOULDBLOCK:
			return err
		case time.Now().After(deadline):
			return ErrInUse
		}
		time.Sleep(50 * time.Millisecond)
	}
}
