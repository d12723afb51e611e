package wasi

import (
	"io/fs"
	"os"
	"time"
)

// fsWriter is the one layer through which every change to mounted files
// passes: data writes, size changes, creation, removal, renames, links and
// time changes. Read-only mounts are refused here. File rollback records its
// undo data here before each change.
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
	return e.file.WriteAt(p, off)
}

// truncate sets the size of the file of e.
func (w fsWriter) truncate(e *fdEntry, size int64) error {
	if err := w.check(w.s.mounts[e.mount]); err != nil {
		return err
	}
	return e.file.Truncate(size)
}

// open opens rel in m with flags that may create or truncate it.
func (w fsWriter) open(m *mount, rel string, flag int, perm fs.FileMode) (*os.File, error) {
	if err := w.check(m); err != nil {
		return nil, err
	}
	return m.root.OpenFile(rel, flag, perm)
}

func (w fsWriter) mkdir(m *mount, rel string) error {
	if err := w.check(m); err != nil {
		return err
	}
	return m.root.Mkdir(rel, 0o777)
}

// remove removes the file or empty directory rel in m.
func (w fsWriter) remove(m *mount, rel string) error {
	if err := w.check(m); err != nil {
		return err
	}
	return m.root.Remove(rel)
}

func (w fsWriter) rename(from *mount, fromRel string, to *mount, toRel string) error {
	if err := w.check(from); err != nil {
		return err
	}
	if err := w.check(to); err != nil {
		return err
	}
	if from != to {
		return errnoError(errnoXdev)
	}
	return renameat(from.root, fromRel, toRel)
}

func (w fsWriter) link(from *mount, fromRel string, to *mount, toRel string) error {
	if err := w.check(to); err != nil {
		return err
	}
	if from != to {
		return errnoError(errnoXdev)
	}
	return from.root.Link(fromRel, toRel)
}

func (w fsWriter) symlink(target string, m *mount, rel string) error {
	if err := w.check(m); err != nil {
		return err
	}
	return m.root.Symlink(target, rel)
}

// chtimesFile sets the times of the file open as e.
func (w fsWriter) chtimesFile(e *fdEntry, atime, mtime time.Time) error {
	if err := w.check(w.s.mounts[e.mount]); err != nil {
		return err
	}
	return utimensat(e.file, "", atime, mtime, false)
}

// chtimes sets the times of name in the directory dir (open within m),
// following a final symbolic link only if follow; zero times are left as
// they are.
func (w fsWriter) chtimes(m *mount, dir *os.File, name string, atime, mtime time.Time, follow bool) error {
	if err := w.check(m); err != nil {
		return err
	}
	return utimensat(dir, name, atime, mtime, !follow)
}
