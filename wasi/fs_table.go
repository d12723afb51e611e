package wasi

import (
	"os"
	"strings"
)

// fdKind is what an fd refers to.
type fdKind uint8

const (
	kindStdin fdKind = iota + 1
	kindStdout
	kindStderr
	kindDir
	kindFile
	kindEvent // Config.Event (fs_event.go)
)

// maxFDs bounds the fd table; path_open beyond it fails with EMFILE.
const maxFDs = 1 << 16

// fdEntry is one open fd. Everything but file is checkpoint state; file is
// reopened from (mount, rel, access, fdflags) on restore.
type fdEntry struct {
	kind    fdKind
	preopen bool
	mount   int    // index into System.mounts; -1 for stdio
	rel     string // slash-separated path within the mount, "." for its root
	file    *os.File

	offset  int64
	fdflags uint16
	read    bool // opened for reading
	write   bool // opened for writing

	rightsBase, rightsInheriting uint64

	dir *dirCursor // kindDir: entries read by fd_readdir

	// track is the change tracking of the file in the epoch numbered
	// trackGen (a cache of fileTracker.files).
	track    *fileTrack
	trackGen uint64
	// trash is set once the file's name was removed while open and the
	// file moved to the journal's trash: changes through the fd are
	// journaled against the trash. detached is set instead when the file
	// left every namespace (or was copied to the trash): its changes are
	// not tracked.
	trash    string
	detached bool
}

// hasPath reports whether e is a directory or file of a mount, rather than
// stdio or the event.
func (e *fdEntry) hasPath() bool { return e.kind == kindDir || e.kind == kindFile }

// journalPath is where changes through e are journaled.
func (e *fdEntry) journalPath() (int, string) {
	if e.trash != "" {
		return trashMount, e.trash
	}
	return e.mount, e.rel
}

// fdTable maps guest fds to entries.
type fdTable struct {
	m map[uint32]*fdEntry
}

func newFDTable(nmounts int) *fdTable {
	t := &fdTable{m: make(map[uint32]*fdEntry)}
	t.m[0] = &fdEntry{kind: kindStdin, mount: -1, read: true, rightsBase: stdioRights}
	t.m[1] = &fdEntry{kind: kindStdout, mount: -1, write: true, rightsBase: stdioRights}
	t.m[2] = &fdEntry{kind: kindStderr, mount: -1, write: true, rightsBase: stdioRights}
	for i := 0; i < nmounts; i++ {
		t.m[uint32(3+i)] = &fdEntry{
			kind: kindDir, preopen: true, mount: i, rel: ".", read: true,
			rightsBase: dirRightsBase, rightsInheriting: dirRightsBase | fileRightsBase,
		}
	}
	return t
}

func (t *fdTable) get(fd uint32) (*fdEntry, bool) {
	e, ok := t.m[fd]
	return e, ok
}

// insert places e at the lowest free fd.
func (t *fdTable) insert(e *fdEntry) (uint32, bool) {
	for fd := uint32(0); fd < maxFDs; fd++ {
		if _, used := t.m[fd]; !used {
			t.m[fd] = e
			return fd, true
		}
	}
	return 0, false
}

func (t *fdTable) remove(fd uint32) {
	delete(t.m, fd)
}

func (t *fdTable) closeAll() {
	for fd, e := range t.m {
		if e.file != nil {
			e.file.Close()
		}
		delete(t.m, fd)
	}
}

// renamed updates the paths of open entries after a rename within mount mi,
// so that a restore reopens them where they now are.
func (t *fdTable) renamed(mi int, from, to string) {
	for _, e := range t.m {
		if e.mount != mi || e.preopen {
			continue
		}
		switch {
		case e.rel == from:
			e.rel = to
		case strings.HasPrefix(e.rel, from+"/"):
			e.rel = to + e.rel[len(from):]
		}
	}
}

// openAs returns the entries of regular files open at rel in mount mi whose
// file is id.
func (t *fdTable) openAs(mi int, rel string, id fileID) []*fdEntry {
	var out []*fdEntry
	for _, e := range t.m {
		if e.kind != kindFile || e.mount != mi || e.rel != rel || e.detached || e.trash != "" {
			continue
		}
		if fi, err := e.file.Stat(); err == nil && fileIDOf(fi) == id {
			out = append(out, e)
		}
	}
	return out
}
