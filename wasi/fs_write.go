package wasi

import (
	"errors"
	"io/fs"
	"os"
	"time"
)

// fsWriter is the one layer through which every change to mounted files
// passes: data writes, size changes, creation, removal, renames, links and
// time changes. Read-only mounts are refused here. When the journal is on,
// each change is tracked for the next checkpoint's delta and, once undo is
// on, what undoes it is appended to the journal before the change is made;
// a change that then fails is followed by an abort record.
type fsWriter struct {
	s *System
}

func (w fsWriter) check(m *mount) error {
	if m.readOnly {
		return errnoError(errnoRofs)
	}
	return nil
}

// writeAt writes p at off into the file of e.
func (w fsWriter) writeAt(e *fdEntry, p []byte, off int64) (int, error) {
	if err := w.check(w.s.mounts[e.mount]); err != nil {
		return 0, err
	}
	j := w.s.j
	t, err := j.trackFD(e)
	if err != nil {
		return 0, err
	}
	if t == nil {
		return e.file.WriteAt(p, off)
	}
	mount, rel := e.journalPath()
	if err := j.save(t, e.file, mount, rel, off, off+int64(len(p))); err != nil {
		return 0, err
	}
	n, err := e.file.WriteAt(p, off)
	t.dirty.add(off, off+int64(n))
	return n, err
}

// truncate sets the size of the file of e.
func (w fsWriter) truncate(e *fdEntry, size int64) error {
	if err := w.check(w.s.mounts[e.mount]); err != nil {
		return err
	}
	j := w.s.j
	t, err := j.trackFD(e)
	if err != nil {
		return err
	}
	if t != nil {
		mount, rel := e.journalPath()
		if err := j.truncating(t, e.file, mount, rel, size); err != nil {
			return err
		}
	}
	return e.file.Truncate(size)
}

// truncating journals what a truncation of f to size loses.
func (j *journal) truncating(t *fileTrack, f *os.File, mount int, rel string, size int64) error {
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	if size < fi.Size() {
		if err := j.save(t, f, mount, rel, size, fi.Size()); err != nil {
			return err
		}
	}
	t.minSize = min(t.minSize, size)
	return nil
}

// create creates and opens the file at loc, which did not exist. Unless
// excl, a file that appeared meanwhile is opened instead.
func (w fsWriter) create(loc *location, flag int, excl bool) (*os.File, error) {
	if err := w.check(loc.m); err != nil {
		return nil, err
	}
	j := w.s.j
	flag |= os.O_CREATE
	if !j.on {
		if excl {
			flag |= os.O_EXCL
		}
		return loc.m.root.OpenFile(loc.rel, flag, 0o666)
	}
	if err := j.append(&jrec{typ: jrecCreate, mount: loc.mi, rel: loc.rel, kind: objFile}); err != nil {
		return nil, err
	}
	f, err := loc.m.root.OpenFile(loc.rel, flag|os.O_EXCL, 0o666)
	if err != nil {
		j.abort()
		if !excl && errors.Is(err, fs.ErrExist) {
			return loc.m.root.OpenFile(loc.rel, flag&^os.O_CREATE, 0)
		}
		return nil, err
	}
	j.created(f, loc.mi, loc.rel)
	j.ops = append(j.ops, deltaOp{typ: opCreate, mount: loc.mi, rel: loc.rel})
	return f, nil
}

// openTrunc opens the existing file at loc with flag and truncates it.
func (w fsWriter) openTrunc(loc *location, flag int) (*os.File, error) {
	if err := w.check(loc.m); err != nil {
		return nil, err
	}
	j := w.s.j
	if !j.on {
		return loc.m.root.OpenFile(loc.rel, flag|os.O_TRUNC, 0)
	}
	if fi := loc.fi; j.undo && fi.Mode().IsRegular() && fi.Size() >= truncTrashMin && linkCount(fi) == 1 {
		if t := j.files[fileIDOf(fi)]; (t == nil || !t.created) && len(w.s.fds.openAs(loc.mi, loc.rel, fileIDOf(fi))) == 0 {
			return w.replace(loc, flag)
		}
	}
	g, err := loc.m.root.OpenFile(loc.rel, os.O_RDWR, 0)
	if err != nil {
		return nil, err
	}
	defer g.Close()
	t, err := j.trackFile(g, loc.mi, loc.rel)
	if err != nil {
		return nil, err
	}
	if err := j.truncating(t, g, loc.mi, loc.rel, 0); err != nil {
		return nil, err
	}
	if err := g.Truncate(0); err != nil {
		return nil, err
	}
	return loc.m.root.OpenFile(loc.rel, flag, 0)
}

// truncTrashMin is the size from which a file opened with O_TRUNC is
// moved to the trash and replaced by a new empty file, rather than having
// its contents copied to the journal.
const truncTrashMin = 64 << 10

// replace moves the file at loc to the trash and creates an empty one
// with its permissions in its place.
func (w fsWriter) replace(loc *location, flag int) (*os.File, error) {
	if err := w.s.removeObj(loc); err != nil {
		return nil, err
	}
	perm := loc.fi.Mode().Perm()
	nl := *loc
	nl.fi = nil
	f, err := w.create(&nl, flag, true)
	if err != nil {
		return nil, err
	}
	if err := f.Chmod(perm); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

func (w fsWriter) mkdir(loc *location) error {
	if err := w.check(loc.m); err != nil {
		return err
	}
	j := w.s.j
	if !j.on {
		return loc.m.root.Mkdir(loc.rel, 0o777)
	}
	if err := j.append(&jrec{typ: jrecCreate, mount: loc.mi, rel: loc.rel, kind: objDir}); err != nil {
		return err
	}
	if err := loc.m.root.Mkdir(loc.rel, 0o777); err != nil {
		j.abort()
		return err
	}
	j.ops = append(j.ops, deltaOp{typ: opMkdir, mount: loc.mi, rel: loc.rel})
	return nil
}

// remove removes the file, symbolic link or empty directory at loc.
func (w fsWriter) remove(loc *location) error {
	if err := w.check(loc.m); err != nil {
		return err
	}
	if !w.s.j.on {
		return loc.m.root.Remove(loc.rel)
	}
	return w.s.removeObj(loc)
}

// removeObj journals and removes what is at loc: a directory or a link is
// remembered by its attributes, a file is moved to the trash (copied when
// an open fd keeps using it) unless the guest created it in this epoch.
func (s *System) removeObj(loc *location) error {
	j, m, fi := s.j, loc.m, loc.fi
	r := &jrec{typ: jrecRemove, mount: loc.mi, rel: loc.rel, mode: uint32(fi.Mode().Perm())}
	r.atime, r.mtime = fileTimes(fi)
	switch {
	case fi.IsDir():
		r.kind = objDir
	case fi.Mode()&fs.ModeSymlink != 0:
		target, err := m.root.Readlink(loc.rel)
		if err != nil {
			return err
		}
		r.kind, r.data = objSymlink, []byte(target)
	default:
		id := fileIDOf(fi)
		open := s.fds.openAs(loc.mi, loc.rel, id)
		t := j.files[id]
		detach := true
		if !j.undo || (t != nil && t.created && t.hasName(loc.rel) && linkCount(fi) == 1) {
			if err := m.root.Remove(loc.rel); err != nil {
				return err
			}
		} else {
			r.kind, r.rel2 = objFile, trashName()
			if err := j.append(r); err != nil {
				return err
			}
			copied, err := j.moveToTrash(m, loc.rel, r.rel2)
			if err != nil {
				j.abort()
				return err
			}
			if !copied {
				j.trashLinked(id)
				detach = false
			}
		}
		for _, e := range open {
			if detach {
				e.detached = true
			} else {
				e.trash = r.rel2
			}
		}
		j.removed(loc.mi, loc.rel, id)
		j.ops = append(j.ops, deltaOp{typ: opRemove, mount: loc.mi, rel: loc.rel})
		return nil
	}
	if err := j.append(r); err != nil {
		return err
	}
	if err := m.root.Remove(loc.rel); err != nil {
		j.abort()
		return err
	}
	j.ops = append(j.ops, deltaOp{typ: opRemove, mount: loc.mi, rel: loc.rel})
	return nil
}

// rename renames from to to, replacing what is at to.
func (w fsWriter) rename(from, to *location) error {
	if err := w.check(from.m); err != nil {
		return err
	}
	if err := w.check(to.m); err != nil {
		return err
	}
	if from.m != to.m {
		return errnoError(errnoXdev)
	}
	j := w.s.j
	if !j.on {
		return renameat(from.m.root, from.rel, to.rel)
	}
	if to.fi != nil {
		if os.SameFile(from.fi, to.fi) {
			return nil // POSIX: renaming a file onto itself does nothing
		}
		if err := w.s.removeObj(to); err != nil {
			return err
		}
	}
	if err := j.append(&jrec{typ: jrecRename, mount: from.mi, rel: from.rel, rel2: to.rel}); err != nil {
		return err
	}
	if err := renameat(from.m.root, from.rel, to.rel); err != nil {
		j.abort()
		return err
	}
	j.renamed(from.mi, from.rel, to.rel)
	j.ops = append(j.ops, deltaOp{typ: opRename, mount: from.mi, rel: from.rel, rel2: to.rel})
	return nil
}

// link makes to a new name of the file from.
func (w fsWriter) link(from, to *location) error {
	if err := w.check(to.m); err != nil {
		return err
	}
	if from.m != to.m {
		return errnoError(errnoXdev)
	}
	j := w.s.j
	if !j.on {
		return from.m.root.Link(from.rel, to.rel)
	}
	if err := j.append(&jrec{typ: jrecCreate, mount: to.mi, rel: to.rel, kind: objFile}); err != nil {
		return err
	}
	if err := from.m.root.Link(from.rel, to.rel); err != nil {
		j.abort()
		return err
	}
	j.ops = append(j.ops, deltaOp{typ: opLink, mount: to.mi, rel: from.rel, rel2: to.rel})
	return nil
}

func (w fsWriter) symlink(target string, loc *location) error {
	if err := w.check(loc.m); err != nil {
		return err
	}
	j := w.s.j
	if !j.on {
		return loc.m.root.Symlink(target, loc.rel)
	}
	if err := j.append(&jrec{typ: jrecCreate, mount: loc.mi, rel: loc.rel, kind: objSymlink}); err != nil {
		return err
	}
	if err := loc.m.root.Symlink(target, loc.rel); err != nil {
		j.abort()
		return err
	}
	j.ops = append(j.ops, deltaOp{typ: opSymlink, mount: loc.mi, rel: loc.rel, rel2: target})
	return nil
}

// chtimesFile sets the times of the file open as e.
func (w fsWriter) chtimesFile(e *fdEntry, atime, mtime time.Time) error {
	if err := w.check(w.s.mounts[e.mount]); err != nil {
		return err
	}
	if j := w.s.j; j.undo && !e.detached {
		fi, err := e.file.Stat()
		if err != nil {
			return err
		}
		mount, rel := e.journalPath()
		if err := j.appendTimes(mount, rel, fi); err != nil {
			return err
		}
	}
	return utimensat(e.file, "", atime, mtime, false)
}

// chtimes sets the times of the object at loc, named name in the directory
// dir, following a final symbolic link only if follow; zero times are left
// as they are.
func (w fsWriter) chtimes(loc *location, dir *os.File, name string, atime, mtime time.Time, follow bool) error {
	if err := w.check(loc.m); err != nil {
		return err
	}
	if j := w.s.j; j.undo {
		if err := j.appendTimes(loc.mi, loc.rel, loc.fi); err != nil {
			return err
		}
	}
	return utimensat(dir, name, atime, mtime, !follow)
}

func (j *journal) appendTimes(mount int, rel string, fi fs.FileInfo) error {
	r := &jrec{typ: jrecTimes, mount: mount, rel: rel}
	r.atime, r.mtime = fileTimes(fi)
	return j.append(r)
}
