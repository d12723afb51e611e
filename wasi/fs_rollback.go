package wasi

import (
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"os"
	"path"
	"time"
)

// RollbackFiles is called in a fresh System (same Config) before Restore
// when resuming from checkpoint epoch. It undoes, newest first, every
// change journaled after that checkpoint (sealed by a later checkpoint or
// not), so that every file under the mounts that the guest touched is as
// it was at epoch: contents, size, existence, names. Files the guest never
// touched are not read. A file that differs from what the checkpoint
// recorded of it (changed behind the guest's back) gives one warning line;
// the rollback goes on. Progress is kept in the journal, so a rollback cut
// short by a kill is finished by the next one.
func (s *System) RollbackFiles(epoch uint64) (warnings []string, err error) {
	if s.closed {
		return nil, ErrClosed
	}
	j := s.j
	if !j.on {
		return nil, ErrNoJournal
	}
	j.close()
	j.resumed = true
	f, err := os.OpenFile(j.path, os.O_RDWR, 0)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrRollback, err)
	}
	sc, err := scanFrames(f)
	if err == nil && sc.end < fileSize(f) {
		if terr := f.Truncate(sc.end); terr != nil { // a torn tail
			err = fmt.Errorf("%w: %v", ErrJournal, terr)
		}
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	ents, end := sc.ents, sc.end
	k := sc.sealOf(epoch)
	if k < 0 {
		f.Close()
		if d := sc.describe(); d != "" {
			return nil, fmt.Errorf("%w: epoch %d is not in the journal (%s)", ErrRollback, epoch, d)
		}
		return nil, fmt.Errorf("%w: epoch %d is not in the journal", ErrRollback, epoch)
	}
	if d, ok := sc.exactFrom(k); !ok {
		f.Close()
		return nil, fmt.Errorf("%w: the journal is damaged at offset %d, after the seal of epoch %d: the files cannot be returned to it", ErrRollback, d.at, epoch)
	}
	j.f, j.size = f, end
	if err := j.openTrash(); err != nil {
		j.close()
		return nil, fmt.Errorf("%w: %v", ErrRollback, err)
	}
	u := &undoer{s: s, epoch: epoch, seen: make(map[string]bool)}
	skip := 0
	for i := len(ents) - 1; i > k; i-- {
		e := ents[i]
		switch {
		case e.rec.typ == jrecAbort:
			skip++
		case skip > 0:
			skip--
		default:
			if err := u.undo(f, e); err != nil {
				j.close()
				return u.warnings, err
			}
		}
		if skip == 0 {
			if err := f.Truncate(e.at); err != nil {
				j.close()
				return u.warnings, fmt.Errorf("%w: %v", ErrJournal, err)
			}
			j.size = e.at
		}
	}
	if sealEnd := ents[k].at + ents[k].n; skip == 0 && j.size > sealEnd {
		// Damaged seals after the seal of epoch, which hold nothing to undo.
		if err := f.Truncate(sealEnd); err != nil {
			j.close()
			return u.warnings, fmt.Errorf("%w: %v", ErrJournal, err)
		}
		j.size = sealEnd
	}
	for _, fp := range ents[k].rec.prints {
		u.verify(fp)
	}
	j.seals, j.trashed, j.trashLinks = nil, nil, nil
	for _, e := range ents[:k+1] {
		switch r := e.rec; {
		case r.typ == jrecSeal:
			j.seals = append(j.seals, journalMark{at: e.at, epoch: r.epoch})
		case r.typ == jrecRemove && r.kind == objFile:
			j.trashed = append(j.trashed, journalMark{at: e.at, name: r.rel2})
			if fi, err := os.Lstat(j.trashDir() + "/" + r.rel2); err == nil {
				j.trashLinked(fileIDOf(fi))
			}
		}
	}
	j.undo = true
	j.newEpoch()
	j.sweepTrash()
	return u.warnings, nil
}

// sweepTrash removes the files in the trash no journal record names: left
// by a kill during ReleaseFiles, they would hold links the guest cannot see.
func (j *journal) sweepTrash() {
	keep := make(map[string]bool, len(j.trashed))
	for _, m := range j.trashed {
		keep[m.name] = true
	}
	des, _ := os.ReadDir(j.trashDir())
	for _, d := range des {
		if !keep[d.Name()] {
			os.RemoveAll(j.trashDir() + "/" + d.Name())
		}
	}
}

// fileSize is f's size, or -1.
func fileSize(f *os.File) int64 {
	fi, err := f.Stat()
	if err != nil {
		return -1
	}
	return fi.Size()
}

// undoer applies undo records and collects warnings, one per path.
type undoer struct {
	s        *System
	epoch    uint64
	warnings []string
	seen     map[string]bool
}

func (u *undoer) warn(mount int, rel, format string, args ...any) {
	p := rel
	if mount < len(u.s.mounts) {
		p = path.Join(u.s.mounts[mount].guest, rel)
	}
	if u.seen[p] {
		return
	}
	u.seen[p] = true
	u.warnings = append(u.warnings, fmt.Sprintf("wasi: rollback to epoch %d: %s: %s", u.epoch, p, fmt.Sprintf(format, args...)))
}

// undo undoes one record. Every undo can be repeated, and tolerates a
// change that was journaled but not made before a kill.
func (u *undoer) undo(jf *os.File, e journalEntry) error {
	r := e.rec
	if r.typ == jrecSeal {
		return nil
	}
	var root *os.Root
	switch {
	case r.mount == trashMount:
		root = u.s.j.trashRoot
	case r.mount >= len(u.s.mounts):
		u.warn(r.mount, r.rel, "mount %d not configured", r.mount)
		return nil
	default:
		root = u.s.mounts[r.mount].root
	}
	var err error
	switch r.typ {
	case jrecMeta:
		var f *os.File
		if f, err = root.OpenFile(r.rel, os.O_WRONLY, 0); err == nil {
			err = f.Truncate(r.size)
			if err == nil {
				err = utimensat(f, "", time.Unix(0, r.atime), time.Unix(0, r.mtime), false)
			}
			f.Close()
		}
	case jrecExtent:
		if r.data == nil {
			if r, err = rereadRecord(jf, e); err != nil {
				return err
			}
		}
		var f *os.File
		if f, err = root.OpenFile(r.rel, os.O_WRONLY, 0); err == nil {
			_, err = f.WriteAt(r.data, r.off)
			f.Close()
		}
	case jrecCreate:
		err = root.Remove(r.rel)
		if isNotExist(err) {
			err = nil
		}
	case jrecRemove:
		err = u.unremove(root, r)
	case jrecRename:
		if _, lerr := root.Lstat(r.rel2); isNotExist(lerr) {
			return nil
		}
		err = renameat(root, r.rel2, r.rel)
	case jrecTimes:
		err = setTimes(root, r.rel, r.atime, r.mtime)
		if isNotExist(err) {
			err = nil
		}
	}
	if err != nil {
		u.warn(r.mount, r.rel, "cannot undo: %v", err)
	}
	return nil
}

// unremove puts back what a remove record removed.
func (u *undoer) unremove(root *os.Root, r *jrec) error {
	j := u.s.j
	switch r.kind {
	case objDir:
		if err := root.Mkdir(r.rel, fs.FileMode(r.mode)); err != nil {
			if errors.Is(err, fs.ErrExist) {
				return nil
			}
			return err
		}
		if err := root.Chmod(r.rel, fs.FileMode(r.mode)); err != nil {
			return err
		}
	case objSymlink:
		if err := root.Symlink(string(r.data), r.rel); err != nil {
			if errors.Is(err, fs.ErrExist) {
				return nil
			}
			return err
		}
	default:
		err := renameIn(j.trash, r.rel2, root, r.rel)
		switch {
		case err == nil:
		case isNotExist(err):
			if _, lerr := root.Lstat(r.rel); lerr == nil {
				return nil // put back before a kill
			}
			return fmt.Errorf("removed file lost from the trash")
		case !errors.Is(err, errXdev):
			return err
		default:
			if err := copyIn(j.trashDir(), r.rel2, root, r.rel, fs.FileMode(r.mode)); err != nil {
				return err
			}
			if err := os.Remove(j.path + ".trash/" + r.rel2); err != nil {
				return err
			}
		}
	}
	return setTimes(root, r.rel, r.atime, r.mtime)
}

// copyIn copies dir/name to rel in root, replacing a partial earlier copy.
func copyIn(dir, name string, root *os.Root, rel string, mode fs.FileMode) error {
	src, err := os.Open(dir + "/" + name)
	if err != nil {
		return err
	}
	defer src.Close()
	dst, err := root.OpenFile(rel, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, mode)
	if err != nil {
		return err
	}
	if _, err := io.Copy(dst, src); err != nil {
		dst.Close()
		return err
	}
	return dst.Close()
}

// setTimes sets the times of rel in root, not following a final link.
func setTimes(root *os.Root, rel string, atime, mtime int64) error {
	d, err := root.Open(path.Dir(rel))
	if err != nil {
		return err
	}
	defer d.Close()
	return utimensat(d, path.Base(rel), time.Unix(0, atime), time.Unix(0, mtime), true)
}

// rereadRecord reads the record of e again from the journal.
func rereadRecord(f *os.File, e journalEntry) (*jrec, error) {
	b := make([]byte, e.n)
	if _, err := f.ReadAt(b, e.at); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrJournal, err)
	}
	p, _, ok := nextFrame(b)
	if !ok {
		return nil, fmt.Errorf("%w: record at %d changed", ErrJournal, e.at)
	}
	return decodeRecord(p)
}

// verify warns when a file the guest had touched before the checkpoint no
// longer matches what the seal recorded of it.
func (u *undoer) verify(fp fingerprint) {
	if fp.mount >= len(u.s.mounts) {
		return
	}
	f, err := u.s.mounts[fp.mount].root.Open(fp.rel)
	if err != nil {
		u.warn(fp.mount, fp.rel, "changed since the checkpoint: %v", err)
		return
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		u.warn(fp.mount, fp.rel, "changed since the checkpoint: %v", err)
		return
	}
	_, mt := fileTimes(fi)
	switch {
	case fi.Size() != fp.size:
		u.warn(fp.mount, fp.rel, "changed since the checkpoint: size %d, was %d", fi.Size(), fp.size)
		return
	case mt != fp.mtime:
		u.warn(fp.mount, fp.rel, "changed since the checkpoint: modification time %s, was %s",
			time.Unix(0, mt).UTC().Format(time.RFC3339Nano), time.Unix(0, fp.mtime).UTC().Format(time.RFC3339Nano))
		return
	}
	h := crc32.New(castagnoli)
	for _, sp := range fp.ranges {
		if _, err := io.Copy(h, io.NewSectionReader(f, sp.off, sp.end-sp.off)); err != nil {
			u.warn(fp.mount, fp.rel, "changed since the checkpoint: %v", err)
			return
		}
	}
	if h.Sum32() != fp.hash {
		u.warn(fp.mount, fp.rel, "changed since the checkpoint: contents differ")
	}
}

// journalCompactMin is the least a journal rewrite drops (ReleaseFiles);
// a variable for the tests.
var journalCompactMin int64 = 1 << 20

// ReleaseFiles drops the undo data that can serve only checkpoints older
// than oldest, which the host has garbage-collected: the journal is
// rewritten from the seal of the newest epoch not after oldest, and the
// trash of files removed before it is emptied. Only once what it drops
// is at least journalCompactMin and as much as what it keeps, or it
// empties trash: it is called in the guest's pause, and a rewrite creates
// and renames a file, which waits behind the store's syncs on a busy disk
// (5–30 ms here), so a guest that writes few files has it rewritten far
// less often than at every checkpoint, and each rewrite copies no more
// than it drops. Until then the journal still serves the older epochs.
func (s *System) ReleaseFiles(oldest uint64) {
	j := s.j
	if s.closed || j.f == nil {
		return
	}
	cut := int64(-1)
	for _, m := range j.seals {
		if m.epoch <= oldest {
			cut = m.at
		}
	}
	if cut <= int64(len(journalMagic)) {
		return
	}
	drop := cut - int64(len(journalMagic))
	if (drop < journalCompactMin || drop < j.size-cut) && !j.trashedBefore(cut) {
		return // the journal still serves oldest and every epoch after it
	}
	tmp := j.path + ".tmp"
	nf, err := os.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return
	}
	_, err = nf.Write([]byte(journalMagic))
	if err == nil {
		_, err = io.Copy(nf, io.NewSectionReader(j.f, cut, j.size-cut))
	}
	if err == nil {
		err = os.Rename(tmp, j.path)
	}
	if err != nil {
		nf.Close()
		os.Remove(tmp)
		return
	}
	j.f.Close()
	j.f = nf
	j.size -= drop
	var seals, trashed []journalMark
	for _, m := range j.seals {
		if m.at >= cut {
			m.at -= drop
			seals = append(seals, m)
		}
	}
	for _, m := range j.trashed {
		if m.at >= cut {
			m.at -= drop
			trashed = append(trashed, m)
		} else {
			os.Remove(j.trashDir() + "/" + m.name)
			j.untrashLinked(m.id)
		}
	}
	j.seals, j.trashed = seals, trashed
}

// trashedBefore reports whether a file removed before offset cut of the
// journal is in the trash.
func (j *journal) trashedBefore(cut int64) bool {
	for _, m := range j.trashed {
		if m.at < cut {
			return true
		}
	}
	return false
}
