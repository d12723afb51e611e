package wasi

import (
	"os"
	"path/filepath"
	"testing"
)

// fdstat returns the rights of fd.
func (h *harness) fdstat(fd uint32) (base, inheriting uint64) {
	h.t.Helper()
	if e := h.call("fd_fdstat_get", uint64(fd), resAt); e != 0 {
		h.t.Fatalf("fd_fdstat_get %d: %d", fd, e)
	}
	return h.u64(resAt + 8), h.u64(resAt + 16)
}

// drop removes rights from the base rights of fd.
func (h *harness) drop(fd uint32, rights uint64) {
	h.t.Helper()
	base, inh := h.fdstat(fd)
	if e := h.call("fd_fdstat_set_rights", uint64(fd), base&^rights, inh); e != 0 {
		h.t.Fatalf("fd_fdstat_set_rights %d: %d", fd, e)
	}
}

// pollOne polls one fd subscription and returns the errno of its event.
func (h *harness) pollOne(typ uint8, fd uint32) errno {
	h.t.Helper()
	h.fdSub(subsAt, 7, typ, fd)
	if e := h.call("poll_oneoff", subsAt, eventsAt, 1, neventAt); e != 0 {
		h.t.Fatalf("poll_oneoff: %d", e)
	}
	return errno(le.Uint16(h.read(eventsAt+8, 2)))
}

// TestRightsErrno calls each import that the preview1 witx names a right
// for, once with every right (it succeeds) and once after the right was
// dropped with fd_fdstat_set_rights (ENOTCAPABLE).
func TestRightsErrno(t *testing.T) {
	const iovAt, dataAt = resAt + 256, scratch + 4096
	file := func(h *harness) uint32 {
		fd, e := h.open(3, "f", 0, 0, rightsRW)
		if e != 0 {
			h.t.Fatalf("open: %d", e)
		}
		return fd
	}
	dir := func(*harness) uint32 { return 3 }
	stdout := func(*harness) uint32 { return 1 }
	for _, tc := range []struct {
		name  string
		right uint64 // the right dropped
		fd    func(h *harness) uint32
		do    func(h *harness, fd uint64) errno
	}{
		{"fd_read", rightFdRead, file, func(h *harness, fd uint64) errno {
			return h.call("fd_read", fd, h.iov(iovAt, dataAt, 4), 1, resAt)
		}},
		{"fd_pread read", rightFdRead, file, func(h *harness, fd uint64) errno {
			return h.call("fd_pread", fd, h.iov(iovAt, dataAt, 4), 1, 0, resAt)
		}},
		{"fd_pread seek", rightFdSeek, file, func(h *harness, fd uint64) errno {
			return h.call("fd_pread", fd, h.iov(iovAt, dataAt, 4), 1, 0, resAt)
		}},
		{"fd_write", rightFdWrite, file, func(h *harness, fd uint64) errno {
			return h.call("fd_write", fd, h.iov(iovAt, dataAt, 4), 1, resAt)
		}},
		{"fd_write stdout", rightFdWrite, stdout, func(h *harness, fd uint64) errno {
			return h.call("fd_write", fd, h.iov(iovAt, dataAt, 4), 1, resAt)
		}},
		{"fd_pwrite write", rightFdWrite, file, func(h *harness, fd uint64) errno {
			return h.call("fd_pwrite", fd, h.iov(iovAt, dataAt, 4), 1, 0, resAt)
		}},
		{"fd_pwrite seek", rightFdSeek, file, func(h *harness, fd uint64) errno {
			return h.call("fd_pwrite", fd, h.iov(iovAt, dataAt, 4), 1, 0, resAt)
		}},
		{"fd_seek", rightFdSeek, file, func(h *harness, fd uint64) errno {
			return h.call("fd_seek", fd, 1, whenceSet, resAt)
		}},
		{"fd_tell", rightFdTell | rightFdSeek, file, func(h *harness, fd uint64) errno {
			return h.call("fd_tell", fd, resAt)
		}},
		{"fd_seek as tell", rightFdTell | rightFdSeek, file, func(h *harness, fd uint64) errno {
			return h.call("fd_seek", fd, 0, whenceCur, resAt)
		}},
		{"fd_sync", rightFdSync, file, func(h *harness, fd uint64) errno { return h.call("fd_sync", fd) }},
		{"fd_datasync", rightFdDatasync, file, func(h *harness, fd uint64) errno { return h.call("fd_datasync", fd) }},
		{"fd_advise", rightFdAdvise, file, func(h *harness, fd uint64) errno { return h.call("fd_advise", fd, 0, 0, 0) }},
		{"fd_allocate", rightFdAllocate, file, func(h *harness, fd uint64) errno { return h.call("fd_allocate", fd, 0, 10) }},
		{"fd_fdstat_set_flags", rightFdFdstatSetFlags, file, func(h *harness, fd uint64) errno {
			return h.call("fd_fdstat_set_flags", fd, uint64(fdflagAppend))
		}},
		{"fd_filestat_get", rightFdFilestatGet, file, func(h *harness, fd uint64) errno {
			return h.call("fd_filestat_get", fd, resAt)
		}},
		{"fd_filestat_set_size", rightFdFilestatSetSize, file, func(h *harness, fd uint64) errno {
			return h.call("fd_filestat_set_size", fd, 1)
		}},
		{"fd_filestat_set_times", rightFdFilestatSetTimes, file, func(h *harness, fd uint64) errno {
			return h.call("fd_filestat_set_times", fd, 0, 0, fstflagMtimNow)
		}},
		{"fd_filestat_set_times dir", rightFdFilestatSetTimes, dir, func(h *harness, fd uint64) errno {
			return h.call("fd_filestat_set_times", fd, 0, 0, fstflagMtimNow)
		}},
		{"fd_readdir", rightFdReaddir, dir, func(h *harness, fd uint64) errno {
			return h.call("fd_readdir", fd, dataAt, 128, 0, resAt)
		}},
		{"poll fd_read", rightPollFdReadwrite, file, func(h *harness, fd uint64) errno {
			return h.pollOne(eventtypeFdRead, uint32(fd))
		}},
		{"poll fd_read without fd_read", rightFdRead, file, func(h *harness, fd uint64) errno {
			return h.pollOne(eventtypeFdRead, uint32(fd))
		}},
		{"poll fd_write", rightFdWrite, stdout, func(h *harness, fd uint64) errno {
			return h.pollOne(eventtypeFdWrite, uint32(fd))
		}},
		{"path_open", rightPathOpen, dir, func(h *harness, fd uint64) errno {
			_, e := h.open(uint32(fd), "f", 0, 0, rightsR)
			return e
		}},
		{"path_open create", rightPathCreateFile, dir, func(h *harness, fd uint64) errno {
			_, e := h.open(uint32(fd), "new", 0, oflagCreat, rightsRW)
			return e
		}},
		{"path_open truncate", rightPathFilestatSetSize, dir, func(h *harness, fd uint64) errno {
			_, e := h.open(uint32(fd), "f", 0, oflagTrunc, rightsR)
			return e
		}},
		{"path_open sync", rightFdSync, dir, func(h *harness, fd uint64) errno {
			_, e := h.openWith(uint32(fd), "f", 0, 0, rightsRW, rightsAll, fdflagSync)
			return e
		}},
		{"path_open dsync", rightFdDatasync | rightFdSync, dir, func(h *harness, fd uint64) errno {
			_, e := h.openWith(uint32(fd), "f", 0, 0, rightsRW, rightsAll, fdflagDsync)
			return e
		}},
		{"path_create_directory", rightPathCreateDirectory, dir, func(h *harness, fd uint64) errno {
			return h.pathCall("path_create_directory", uint32(fd), "nd")
		}},
		{"path_filestat_get", rightPathFilestatGet, dir, func(h *harness, fd uint64) errno {
			ptr, n := h.str("f", scratch)
			return h.call("path_filestat_get", fd, 0, ptr, n, resAt)
		}},
		{"path_filestat_set_times", rightPathFilestatSetTimes, dir, func(h *harness, fd uint64) errno {
			ptr, n := h.str("f", scratch)
			return h.call("path_filestat_set_times", fd, 0, ptr, n, 0, 0, fstflagMtimNow)
		}},
		{"path_link source", rightPathLinkSource, dir, func(h *harness, fd uint64) errno {
			return h.twoPathCall("path_link", uint32(fd), "f", uint32(fd), "h")
		}},
		{"path_link target", rightPathLinkTarget, dir, func(h *harness, fd uint64) errno {
			return h.twoPathCall("path_link", uint32(fd), "f", uint32(fd), "h")
		}},
		{"path_readlink", rightPathReadlink, dir, func(h *harness, fd uint64) errno {
			ptr, n := h.str("lf", scratch)
			return h.call("path_readlink", fd, ptr, n, resAt, 64, resAt-8)
		}},
		{"path_remove_directory", rightPathRemoveDirectory, dir, func(h *harness, fd uint64) errno {
			return h.pathCall("path_remove_directory", uint32(fd), "empty")
		}},
		{"path_rename source", rightPathRenameSource, dir, func(h *harness, fd uint64) errno {
			return h.twoPathCall("path_rename", uint32(fd), "f", uint32(fd), "g")
		}},
		{"path_rename target", rightPathRenameTarget, dir, func(h *harness, fd uint64) errno {
			return h.twoPathCall("path_rename", uint32(fd), "f", uint32(fd), "g")
		}},
		{"path_symlink", rightPathSymlink, dir, func(h *harness, fd uint64) errno {
			return h.symlink("f", uint32(fd), "s")
		}},
		{"path_unlink_file", rightPathUnlinkFile, dir, func(h *harness, fd uint64) errno {
			return h.pathCall("path_unlink_file", uint32(fd), "f")
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, _ := fixture(t)
			if e := tc.do(h, uint64(tc.fd(h))); e != 0 {
				t.Fatalf("with every right: errno %d", e)
			}
			h, _ = fixture(t)
			fd := tc.fd(h)
			h.drop(fd, tc.right)
			if e := tc.do(h, uint64(fd)); e != errnoNotcapable {
				t.Fatalf("without the right: errno %d, want ENOTCAPABLE", e)
			}
		})
	}
}

// TestSetRightsNarrows: fd_fdstat_set_rights only ever narrows.
func TestSetRightsNarrows(t *testing.T) {
	h, _ := fixture(t)
	fd, e := h.open(3, "f", 0, 0, rightsR)
	if e != 0 {
		t.Fatal(e)
	}
	base, inh := h.fdstat(fd)
	if base&rightFdWrite != 0 {
		t.Fatalf("read-only fd has fd_write: %#x", base)
	}
	if e := h.call("fd_fdstat_set_rights", uint64(fd), base|rightFdWrite, inh); e != errnoNotcapable {
		t.Fatalf("widening base: errno %d", e)
	}
	h.drop(fd, rightFdSeek)
	if e := h.call("fd_fdstat_set_rights", uint64(fd), base, inh); e != errnoNotcapable {
		t.Fatalf("taking a dropped right back: errno %d", e)
	}
	if got, _ := h.fdstat(fd); got != base&^rightFdSeek {
		t.Fatalf("rights %#x, want %#x", got, base&^rightFdSeek)
	}
	dbase, dinh := h.fdstat(3)
	if e := h.call("fd_fdstat_set_rights", 3, dbase, dinh|1<<40); e != errnoNotcapable {
		t.Fatalf("widening inheriting: errno %d", e)
	}
	// Only fd_tell dropped: fd_seek implies it.
	h.drop(fd, rightFdTell)
	if e := h.call("fd_tell", uint64(fd), resAt); e != errnoNotcapable {
		t.Fatalf("tell without seek and tell: errno %d", e)
	}
	fd2, _ := h.open(3, "f", 0, 0, rightsR)
	h.drop(fd2, rightFdTell)
	if e := h.call("fd_tell", uint64(fd2), resAt); e != 0 {
		t.Fatalf("tell with seek: errno %d", e)
	}
}

// TestPathOpenRights: the rights of a new fd are those asked for that apply
// to its kind, bounded by the directory's inheriting rights.
func TestPathOpenRights(t *testing.T) {
	const iovAt, dataAt = resAt + 256, scratch + 4096
	h, _ := fixture(t)
	write := func(fd uint32) errno { return h.call("fd_write", uint64(fd), h.iov(iovAt, dataAt, 1), 1, resAt) }
	for _, tc := range []struct {
		name    string
		path    string
		oflags  uint16
		rights  uint64
		inh     uint64
		base    uint64
		inhWant uint64
	}{
		{"file read-write", "f", 0, rightsRW, rightsAll, fileRightsBase, rightsAll &^ (rightSockShutdown | rightSockAccept)},
		{"file read-only", "f", 0, rightsR, 0, fileRightsBase &^ (rightFdDatasync | rightFdWrite | rightFdAllocate), 0},
		{"dir", "d", oflagDirectory, rightsR, rightsAll, dirRightsBase &^ (rightFdDatasync | rightPathFilestatSetSize), rightsAll},
		{"no rights", "f", 0, 0, 0, fileRightsBase &^ fileWriteRights, fileRightsBase | dirRightsBase},
		{"no rights creating", "n", oflagCreat, 0, 0, fileRightsBase, fileRightsBase | dirRightsBase},
		{"no rights dir", "d", 0, 0, 0, dirRightsBase, fileRightsBase | dirRightsBase},
	} {
		fd, e := h.openWith(3, tc.path, 0, tc.oflags, tc.rights, tc.inh, 0)
		if e != 0 {
			t.Fatalf("%s: open: %d", tc.name, e)
		}
		if base, inh := h.fdstat(fd); base != tc.base || inh != tc.inhWant {
			t.Errorf("%s: rights %#x %#x, want %#x %#x", tc.name, base, inh, tc.base, tc.inhWant)
		}
	}

	// A directory whose inheriting rights lack fd_write opens nothing for
	// writing below it, and neither do the directories opened from it.
	base, inh := h.fdstat(3)
	if e := h.call("fd_fdstat_set_rights", 3, base, inh&^rightFdWrite); e != 0 {
		t.Fatal(e)
	}
	if _, e := h.open(3, "f", 0, 0, rightsRW); e != errnoNotcapable {
		t.Fatalf("open for writing: errno %d", e)
	}
	fd, e := h.open(3, "f", 0, 0, rightsR)
	if e != 0 {
		t.Fatalf("open for reading: errno %d", e)
	}
	if e := write(fd); e != errnoNotcapable {
		t.Fatalf("write: errno %d", e)
	}
	fd, e = h.open(3, "n2", 0, oflagCreat|oflagTrunc, 0)
	if e != 0 {
		t.Fatalf("create asking no rights: errno %d", e)
	}
	if e := write(fd); e != errnoNotcapable {
		t.Fatalf("write to a file created asking no rights: errno %d", e)
	}
	sub, e := h.open(3, "d", 0, oflagDirectory, rightsR)
	if e != 0 {
		t.Fatal(e)
	}
	if _, e := h.open(sub, "inner", 0, 0, rightsRW); e != errnoNotcapable {
		t.Fatalf("open for writing below a subdirectory: errno %d", e)
	}
	if _, e := h.open(3, "d", 0, 0, rightsRW); e != errnoIsdir {
		t.Fatalf("open a directory for writing: errno %d", e)
	}
}

// TestRightsSurviveRestore: the rights of each fd are checkpoint state.
func TestRightsSurviveRestore(t *testing.T) {
	const iovAt, dataAt = resAt + 256, scratch + 4096
	h, top := fixture(t)
	fd, e := h.open(3, "f", 0, 0, rightsRW)
	if e != 0 {
		t.Fatal(e)
	}
	h.drop(fd, rightFdRead)
	h.drop(3, rightPathUnlinkFile)
	base, inh := h.fdstat(fd)
	dbase, dinh := h.fdstat(3)
	snap, err := h.s.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	h2 := newHarness(t, Config{Mounts: []Mount{
		{HostPath: top + "/data", GuestPath: "/data"},
		{HostPath: top + "/ro", GuestPath: "/ro", ReadOnly: true},
	}})
	if err := h2.s.Restore(snap); err != nil {
		t.Fatal(err)
	}
	if b, i := h2.fdstat(fd); b != base || i != inh {
		t.Fatalf("file rights after restore %#x %#x, want %#x %#x", b, i, base, inh)
	}
	if b, i := h2.fdstat(3); b != dbase || i != dinh {
		t.Fatalf("dir rights after restore %#x %#x, want %#x %#x", b, i, dbase, dinh)
	}
	if e := h2.call("fd_read", uint64(fd), h2.iov(iovAt, dataAt, 4), 1, resAt); e != errnoNotcapable {
		t.Fatalf("read after restore: errno %d", e)
	}
	if e := h2.call("fd_write", uint64(fd), h2.iov(iovAt, dataAt, 4), 1, resAt); e != 0 {
		t.Fatalf("write after restore: errno %d", e)
	}
	if e := h2.pathCall("path_unlink_file", 3, "f"); e != errnoNotcapable {
		t.Fatalf("unlink after restore: errno %d", e)
	}
}

// TestFdRenumberPreopen: a preopen moves like any fd and stays a preopen.
func TestFdRenumberPreopen(t *testing.T) {
	h, _ := fixture(t)
	if e := h.call("fd_renumber", 3, 1); e != 0 {
		t.Fatalf("renumber 3 onto 1: %d", e)
	}
	if e := h.call("fd_prestat_get", 1, resAt); e != 0 {
		t.Fatalf("prestat of the moved preopen: %d", e)
	}
	if e := h.call("fd_prestat_get", 3, resAt); e != errnoBadf {
		t.Fatalf("prestat of the old number: %d", e)
	}
	if _, e := h.open(1, "f", 0, 0, rightsR); e != 0 {
		t.Fatalf("open below the moved preopen: %d", e)
	}
	// Onto a preopen: it is closed and replaced.
	fd, _ := h.open(4, "r", 0, 0, rightsR)
	if e := h.call("fd_renumber", uint64(fd), 4); e != 0 {
		t.Fatalf("renumber onto preopen 4: %d", e)
	}
	if e := h.call("fd_prestat_get", 4, resAt); e != errnoBadf {
		t.Fatalf("prestat of the replaced preopen: %d", e)
	}
	if e := h.call("fd_read", 4, h.iov(resAt+256, scratch+4096, 2), 1, resAt); e != 0 || h.u32(resAt) != 2 {
		t.Fatalf("read the file now at 4: %d", e)
	}
	// The table with a moved preopen survives a checkpoint.
	snap, err := h.s.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := decodeSnapshot(snap); err != nil {
		t.Fatal(err)
	}
}

// TestPathOpenTruncateRights: O_TRUNC needs path_filestat_set_size on the
// directory or the rights to write and truncate in the fd it opens, and a
// refused open truncates nothing.
func TestPathOpenTruncateRights(t *testing.T) {
	h, top := fixture(t)
	h.drop(3, rightPathFilestatSetSize)
	if _, e := h.open(3, "f", 0, oflagTrunc, rightsR); e != errnoNotcapable {
		t.Fatalf("truncate read-only: errno %d", e)
	}
	if _, e := h.open(3, "f", 0, oflagTrunc, rightsRW&^rightFdFilestatSetSize); e != errnoNotcapable {
		t.Fatalf("truncate without fd_filestat_set_size: errno %d", e)
	}
	if b, _ := os.ReadFile(filepath.Join(top, "data", "f")); string(b) != "hello" {
		t.Fatalf("file after refused truncations: %q", b)
	}
	// Go's os.Root: a directory opened read-only creates with O_TRUNC.
	if _, e := h.open(3, "f", 0, oflagCreat|oflagTrunc, rightsRW); e != 0 {
		t.Fatalf("truncate with the rights to write and truncate: errno %d", e)
	}
	if b, _ := os.ReadFile(filepath.Join(top, "data", "f")); len(b) != 0 {
		t.Fatalf("file not truncated: %q", b)
	}
	base, inh := h.fdstat(3)
	if e := h.call("fd_fdstat_set_rights", 3, base, inh&^rightFdFilestatSetSize); e != 0 {
		t.Fatal(e)
	}
	if _, e := h.open(3, "f", 0, oflagTrunc, rightsRW); e != errnoNotcapable {
		t.Fatalf("truncate below a directory that cannot give fd_filestat_set_size: errno %d", e)
	}
	// fd_sync covers dsync.
	h, _ = fixture(t)
	h.drop(3, rightFdDatasync)
	if _, e := h.openWith(3, "f", 0, 0, rightsR, 0, fdflagDsync); e != 0 {
		t.Fatalf("dsync with fd_sync: errno %d", e)
	}
}
