package wasi

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"os"
	"sort"
	"syscall"
)

// A file delta (the blob of CheckpointFiles) redoes one epoch of the
// guest's file changes on the files as they were at the previous
// checkpoint: deltaMagic, a uvarint version, the epoch, the namespace
// operations in the order the guest made them, then the files whose data
// changed, each by its final path with the smallest size it had in the
// epoch, its final size, and the current contents of the ranges written.
const (
	deltaMagic   = "LHFDLT\x00"
	deltaVersion = 1
)

// Delta operation types.
const (
	opCreate  = 1 // create an empty file at rel
	opMkdir   = 2
	opSymlink = 3 // rel2 is the target
	opLink    = 4 // link rel to rel2
	opRemove  = 5
	opRename  = 6 // rename rel to rel2
	opMax     = 7
)

type deltaOp struct {
	typ   byte
	mount int
	rel   string
	rel2  string
}

// deltaFile is the data of one file in a delta.
type deltaFile struct {
	mount         int
	rel           string
	minSize, size int64
	extents       []deltaExtent
}

type deltaExtent struct {
	off  int64
	data []byte
}

// CheckpointFiles is called while the guest is paused for checkpoint
// epoch. It seals the journal's current epoch (changes made from now on
// are undone by RollbackFiles(epoch)) and returns the file delta of the
// checkpoint: the changes since the previous one (namespace operations,
// sizes, and the current contents of the ranges the guest wrote, never
// whole untouched files). The first call of a run that did not start with
// RollbackFiles starts a new journal.
func (s *System) CheckpointFiles(epoch uint64) ([]byte, error) {
	if s.closed {
		return nil, ErrClosed
	}
	j := s.j
	if !j.on {
		return nil, ErrNoJournal
	}
	if j.f == nil {
		if j.resumed {
			return nil, fmt.Errorf("%w: not open after a failed rollback", ErrJournal)
		}
		if err := j.create(); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrJournal, err)
		}
	}
	b, prints, err := j.delta(epoch)
	if err != nil {
		return nil, err
	}
	j.undo = true
	if err := j.append(&jrec{typ: jrecSeal, epoch: epoch, prints: prints}); err != nil {
		return nil, err
	}
	j.newEpoch()
	return b, nil
}

// PendingFiles returns the file delta of the changes made since the
// last checkpoint (as CheckpointFiles would, for epoch) without sealing
// the journal: a rank that moves to another host takes them with it,
// and if it stays, its next checkpoint's delta still holds them.
func (s *System) PendingFiles(epoch uint64) ([]byte, error) {
	if s.closed {
		return nil, ErrClosed
	}
	if !s.j.on {
		return nil, ErrNoJournal
	}
	b, _, err := s.j.delta(epoch)
	return b, err
}

// delta encodes the changes since the last seal as the delta of epoch,
// with the fingerprints of the files written for the seal.
func (j *journal) delta(epoch uint64) ([]byte, []fingerprint, error) {
	files, prints, err := j.collect()
	if err != nil {
		return nil, nil, err
	}
	b := []byte(deltaMagic)
	b = binary.AppendUvarint(b, deltaVersion)
	b = binary.AppendUvarint(b, epoch)
	b = binary.AppendUvarint(b, uint64(len(j.ops)))
	for _, op := range j.ops {
		b = append(b, op.typ)
		b = binary.AppendUvarint(b, uint64(op.mount))
		b = appendString(b, op.rel)
		b = appendString(b, op.rel2)
	}
	b = binary.AppendUvarint(b, uint64(len(files)))
	for _, f := range files {
		b = binary.AppendUvarint(b, uint64(f.mount))
		b = appendString(b, f.rel)
		b = binary.AppendVarint(b, f.minSize)
		b = binary.AppendVarint(b, f.size)
		b = binary.AppendUvarint(b, uint64(len(f.extents)))
		for _, x := range f.extents {
			b = binary.AppendVarint(b, x.off)
			b = appendString(b, string(x.data))
		}
	}
	return b, prints, nil
}

// collect reads the current contents of every tracked file's written
// ranges, with a fingerprint of each file for the seal.
func (j *journal) collect() ([]deltaFile, []fingerprint, error) {
	var files []deltaFile
	var prints []fingerprint
	for id, t := range j.files {
		for _, rel := range t.names {
			f, err := j.s.mounts[t.mount].root.Open(rel)
			if err != nil {
				continue // replaced or removed behind the guest's back
			}
			df, fp, err := readTracked(f, id, t, rel)
			f.Close()
			if err != nil {
				return nil, nil, fmt.Errorf("%w: %s: %v", ErrJournal, rel, err)
			}
			if df != nil {
				files = append(files, *df)
				prints = append(prints, *fp)
				break
			}
		}
	}
	sort.Slice(files, func(a, b int) bool {
		if files[a].mount != files[b].mount {
			return files[a].mount < files[b].mount
		}
		return files[a].rel < files[b].rel
	})
	sort.Slice(prints, func(a, b int) bool {
		if prints[a].mount != prints[b].mount {
			return prints[a].mount < prints[b].mount
		}
		return prints[a].rel < prints[b].rel
	})
	return files, prints, nil
}

// readTracked reads the delta data and fingerprint of t from f; nil when f
// is not the tracked file.
func readTracked(f *os.File, id fileID, t *fileTrack, rel string) (*deltaFile, *fingerprint, error) {
	fi, err := f.Stat()
	if err != nil {
		return nil, nil, err
	}
	if fileIDOf(fi) != id {
		return nil, nil, nil
	}
	size := fi.Size()
	df := &deltaFile{mount: t.mount, rel: rel, minSize: min(t.minSize, size), size: size}
	_, mt := fileTimes(fi)
	fp := &fingerprint{mount: t.mount, rel: rel, size: size, mtime: mt}
	h := crc32.New(castagnoli)
	for _, sp := range t.dirty.clip(size) {
		buf := make([]byte, sp.end-sp.off)
		n, err := f.ReadAt(buf, sp.off)
		if err != nil && err != io.EOF {
			return nil, nil, err
		}
		buf = buf[:n]
		h.Write(buf)
		df.extents = append(df.extents, deltaExtent{sp.off, buf})
		fp.ranges = append(fp.ranges, sp)
	}
	fp.hash = h.Sum32()
	return df, fp, nil
}

// delta is a decoded file delta.
type delta struct {
	epoch uint64
	ops   []deltaOp
	files []deltaFile
}

// decodeDelta decodes a CheckpointFiles blob.
func decodeDelta(b []byte) (*delta, error) {
	out, rest, err := decodeDeltaPrefix(b)
	if err == nil && len(rest) != 0 {
		err = fmt.Errorf("%w: %d trailing bytes", ErrJournal, len(rest))
	}
	return out, err
}

// decodeDeltas decodes CheckpointFiles blobs laid end to end.
func decodeDeltas(b []byte) ([]*delta, error) {
	var out []*delta
	for len(b) > 0 {
		d, rest, err := decodeDeltaPrefix(b)
		if err != nil {
			return nil, err
		}
		out, b = append(out, d), rest
	}
	return out, nil
}

// decodeDeltaPrefix decodes the CheckpointFiles blob b begins with, and
// returns what follows it.
func decodeDeltaPrefix(b []byte) (*delta, []byte, error) {
	if len(b) < len(deltaMagic) || string(b[:len(deltaMagic)]) != deltaMagic {
		return nil, nil, fmt.Errorf("%w: no delta magic", ErrJournal)
	}
	d := &decoder{b: b[len(deltaMagic):]}
	if v := d.uvarint(); d.err == nil && v != deltaVersion {
		return nil, nil, fmt.Errorf("%w: delta version %d", ErrJournal, v)
	}
	out := &delta{epoch: d.uvarint()}
	n := d.count(4)
	for i := 0; i < n && d.err == nil; i++ {
		op := deltaOp{typ: d.byte(), mount: int(d.uvarint() & 0xffff), rel: d.string(), rel2: d.string()}
		if d.err == nil && (op.typ < opCreate || op.typ >= opMax || !validRel(op.rel) ||
			(op.typ == opRename || op.typ == opLink) && !validRel(op.rel2)) {
			d.fail("bad delta op")
		}
		out.ops = append(out.ops, op)
	}
	n = d.count(5)
	for i := 0; i < n && d.err == nil; i++ {
		f := deltaFile{mount: int(d.uvarint() & 0xffff), rel: d.string(), minSize: d.varint(), size: d.varint()}
		ne := d.count(2)
		for k := 0; k < ne && d.err == nil; k++ {
			x := deltaExtent{off: d.varint(), data: []byte(d.string())}
			if x.off < 0 || x.off+int64(len(x.data)) < x.off {
				d.fail("bad extent")
			}
			f.extents = append(f.extents, x)
		}
		if d.err == nil && (!validRel(f.rel) || f.minSize < 0 || f.size < 0) {
			d.fail("bad delta file")
		}
		out.files = append(out.files, f)
	}
	if d.err != nil {
		return nil, nil, fmt.Errorf("%w: %v", ErrJournal, d.err)
	}
	return out, d.b, nil
}

// clearName removes what an earlier redo of the same deltas left at rel,
// a name a delta makes anew (redoOver); a directory is kept if keepDir.
func clearName(r *os.Root, rel string, keepDir bool) error {
	fi, err := r.Lstat(rel)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil
	case err != nil:
		return err
	case fi.IsDir() && keepDir:
		return nil
	case fi.IsDir():
		return r.RemoveAll(rel)
	}
	return r.Remove(rel)
}

// applyDelta redoes a delta, or several laid end to end, in order, on
// files as they were at the checkpoint before the first, opened as roots
// (one per mount).
func applyDelta(roots []*os.Root, b []byte) error {
	ds, err := decodeDeltas(b)
	if err != nil {
		return err
	}
	for _, d := range ds {
		if err := redoDelta(roots, d); err != nil {
			return err
		}
	}
	return nil
}

// redoDelta redoes one decoded delta.
func redoDelta(roots []*os.Root, d *delta) error {
	root := func(mi int) (*os.Root, error) {
		if mi >= len(roots) {
			return nil, fmt.Errorf("%w: mount %d", ErrJournal, mi)
		}
		return roots[mi], nil
	}
	for _, op := range d.ops {
		r, err := root(op.mount)
		if err != nil {
			return err
		}
		// Each op but a remove makes a name that did not exist when the
		// guest made it: one that exists here is of an earlier redo of
		// the same deltas (redoOver).
		switch op.typ {
		case opCreate:
			var f *os.File
			if err = clearName(r, op.rel, false); err == nil {
				if f, err = r.OpenFile(op.rel, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o666); err == nil {
					err = f.Close()
				}
			}
		case opMkdir:
			if err = clearName(r, op.rel, true); err == nil {
				err = r.Mkdir(op.rel, 0o777)
				if fi, serr := r.Lstat(op.rel); errors.Is(err, fs.ErrExist) && serr == nil && fi.IsDir() {
					err = nil
				}
			}
		case opSymlink:
			if err = clearName(r, op.rel, false); err == nil {
				err = r.Symlink(op.rel2, op.rel)
			}
		case opLink:
			if err = clearName(r, op.rel2, false); err == nil {
				err = r.Link(op.rel, op.rel2)
			}
		case opRemove:
			err = r.Remove(op.rel)
			if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTEMPTY) || errors.Is(err, syscall.EEXIST) {
				err = nil
			}
		case opRename:
			_, serr := r.Lstat(op.rel)
			_, terr := r.Lstat(op.rel2)
			switch {
			case errors.Is(serr, fs.ErrNotExist) && terr == nil:
				// Renamed by an earlier redo (a file that was there
				// before the deltas).
			case serr == nil:
				if err = clearName(r, op.rel2, false); err == nil {
					err = renameat(r, op.rel, op.rel2)
				}
			default:
				err = renameat(r, op.rel, op.rel2)
			}
		}
		if err != nil {
			return fmt.Errorf("%w: redo %d %s: %v", ErrJournal, op.typ, op.rel, err)
		}
	}
	for _, df := range d.files {
		r, err := root(df.mount)
		if err != nil {
			return err
		}
		f, err := r.OpenFile(df.rel, os.O_WRONLY, 0)
		if err != nil {
			return fmt.Errorf("%w: redo %s: %v", ErrJournal, df.rel, err)
		}
		err = f.Truncate(df.minSize)
		if err == nil {
			err = f.Truncate(df.size)
		}
		for _, x := range df.extents {
			if err == nil {
				_, err = f.WriteAt(x.data, x.off)
			}
		}
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("%w: redo %s: %v", ErrJournal, df.rel, err)
		}
	}
	return nil
}

// RedoFiles redoes a file delta (a CheckpointFiles blob), or several
// laid end to end (those of consecutive checkpoints, in order), on the
// directories of mounts, in the order the guest that made them had them,
// as they were at the checkpoint before the first: a rank moved to
// another host gets its files there by redoing every delta of its
// checkpoints, the first on the mounts as the job started. The mounts may
// also hold what an earlier redo of the same deltas, or of their first
// ones, made there (a rank that comes back to a host it ran on): a name
// a delta makes anew is cleared first (a directory is kept, as other
// guests' files may be in it), a remove of what is gone is done, and a
// rename whose source is gone and target there was done.
func RedoFiles(mounts []Mount, delta []byte) error {
	var roots []*os.Root
	defer func() {
		for _, r := range roots {
			r.Close()
		}
	}()
	for _, m := range mounts {
		r, err := os.OpenRoot(m.HostPath)
		if err != nil {
			return fmt.Errorf("%w: %v", ErrJournal, err)
		}
		roots = append(roots, r)
	}
	return applyDelta(roots, delta)
}
