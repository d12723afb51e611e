package wasi

import (
	"os"
	"path/filepath"
	"testing"
)

// fixture lays out a read-write mount /data (fd 3) and a read-only mount
// /ro (fd 4) beside a host file the guest must never reach.
func fixture(t *testing.T) (*harness, string) {
	t.Helper()
	top := t.TempDir()
	data, ro := filepath.Join(top, "data"), filepath.Join(top, "ro")
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.Mkdir(data, 0o755))
	must(os.Mkdir(ro, 0o755))
	must(os.WriteFile(filepath.Join(top, "outside"), []byte("secret"), 0o644))
	must(os.WriteFile(filepath.Join(data, "f"), []byte("hello"), 0o644))
	must(os.Mkdir(filepath.Join(data, "d"), 0o755))
	must(os.WriteFile(filepath.Join(data, "d", "inner"), nil, 0o644))
	must(os.Mkdir(filepath.Join(data, "empty"), 0o755))
	must(os.WriteFile(filepath.Join(ro, "r"), []byte("ro"), 0o644))
	for link, target := range map[string]string{
		"lf": "f", "ld": "d", "dangle": "nope", "abs": "/data/f", "esc": "../outside",
		"escabs": "/etc/passwd", "loop": "loop", "cross": "/ro/r", "dotdot": "d/../../data/f",
	} {
		must(os.Symlink(target, filepath.Join(data, link)))
	}
	return newHarness(t, Config{Mounts: []Mount{
		{HostPath: data, GuestPath: "/data"},
		{HostPath: ro, GuestPath: "/ro", ReadOnly: true},
	}}), top
}

const (
	scratch = 16 << 10
	resAt   = 12 << 10
)

// str places s in guest memory and returns its pointer and length.
func (h *harness) str(s string, at uint32) (uint64, uint64) {
	h.write(at, []byte(s))
	return uint64(at), uint64(len(s))
}

// The rights the harness opens with are those Go's syscall package asks
// for: every right for read-write, less the write rights for read-only,
// less the read rights for write-only, and every right as inheriting.
const (
	rightsAll = fileRightsBase | dirRightsBase
	rightsRW  = rightsAll
	rightsR   = rightsAll &^ (rightFdDatasync | rightFdWrite | rightFdAllocate | rightPathFilestatSetSize)
	rightsW   = rightsAll &^ (rightFdRead | rightFdReaddir)
)

func (h *harness) open(dirfd uint32, p string, dirflags, oflags uint16, rights uint64) (uint32, errno) {
	return h.openWith(dirfd, p, dirflags, oflags, rights, rightsAll, 0)
}

// openWith is open with inheriting rights and fdflags.
func (h *harness) openWith(dirfd uint32, p string, dirflags, oflags uint16, rights, inheriting uint64, fdflags uint16) (uint32, errno) {
	ptr, n := h.str(p, scratch)
	e := h.call("path_open", uint64(dirfd), uint64(dirflags), ptr, n, uint64(oflags), rights, inheriting, uint64(fdflags), resAt)
	return h.u32(resAt), e
}

func TestPathOpenErrno(t *testing.T) {
	const follow = lookupSymlinkFollow
	for _, tc := range []struct {
		name     string
		dirfd    uint32
		path     string
		dirflags uint16
		oflags   uint16
		rights   uint64
		want     errno
	}{
		{"file", 3, "f", 0, 0, rightsR, errnoSuccess},
		{"missing", 3, "nope", 0, 0, rightsR, errnoNoent},
		{"create", 3, "nope", 0, oflagCreat, rightsRW, errnoSuccess},
		{"create exclusive existing", 3, "f", 0, oflagCreat | oflagExcl, rightsRW, errnoExist},
		{"directory", 3, "d", 0, oflagDirectory, rightsR, errnoSuccess},
		{"directory not dir", 3, "f", 0, oflagDirectory, rightsR, errnoNotdir},
		{"directory for writing", 3, "d", 0, 0, rightsW, errnoIsdir},
		{"symlink nofollow", 3, "lf", 0, 0, rightsR, errnoLoop},
		{"symlink follow", 3, "lf", follow, 0, rightsR, errnoSuccess},
		{"dir symlink in path", 3, "ld/inner", 0, 0, rightsR, errnoSuccess},
		{"dangling", 3, "dangle", follow, 0, rightsR, errnoNoent},
		{"dangling create", 3, "dangle", follow, oflagCreat, rightsRW, errnoSuccess},
		{"dangling create exclusive", 3, "dangle", follow, oflagCreat | oflagExcl, rightsRW, errnoExist},
		{"absolute link", 3, "abs", follow, 0, rightsR, errnoSuccess},
		{"link with dotdot", 3, "dotdot", follow, 0, rightsR, errnoSuccess},
		{"escaping link", 3, "esc", follow, 0, rightsR, errnoNoent},
		{"escaping absolute link", 3, "escabs", follow, 0, rightsR, errnoNoent},
		{"link loop", 3, "loop", follow, 0, rightsR, errnoLoop},
		{"cross-mount link", 3, "cross", follow, 0, rightsR, errnoSuccess},
		{"dotdot", 3, "../outside", 0, 0, rightsR, errnoPerm},
		{"dotdot inside", 3, "d/../f", 0, 0, rightsR, errnoSuccess},
		{"dotdot past root", 3, "d/../../outside", 0, 0, rightsR, errnoPerm},
		{"absolute", 3, "/etc/passwd", 0, 0, rightsR, errnoPerm},
		{"trailing slash on file", 3, "f/", 0, 0, rightsR, errnoNotdir},
		{"file as dir", 3, "f/x", 0, 0, rightsR, errnoNotdir},
		{"empty", 3, "", 0, 0, rightsR, errnoInval},
		{"bad fd", 99, "f", 0, 0, rightsR, errnoBadf},
		{"stdio fd", 1, "f", 0, 0, rightsR, errnoNotdir},
		{"read-only mount read", 4, "r", 0, 0, rightsR, errnoSuccess},
		{"read-only mount write", 4, "r", 0, 0, rightsW, errnoRofs},
		{"read-only mount create", 4, "new", 0, oflagCreat, rightsRW, errnoRofs},
		{"read-only mount truncate", 4, "r", 0, oflagTrunc, rightsW, errnoRofs},
		{"create directory flag", 3, "x", 0, oflagCreat | oflagDirectory, rightsR, errnoInval},
		{"create with trailing slash", 3, "newdir/", 0, oflagCreat, rightsRW, errnoIsdir},
		{"mount root", 3, ".", 0, oflagDirectory, rightsR, errnoSuccess},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, _ := fixture(t)
			if _, e := h.open(tc.dirfd, tc.path, tc.dirflags, tc.oflags, tc.rights); e != tc.want {
				t.Fatalf("errno %d, want %d", e, tc.want)
			}
		})
	}
}

// pathCall calls a path_* function of shape (fd, path, len).
func (h *harness) pathCall(fn string, dirfd uint32, p string) errno {
	ptr, n := h.str(p, scratch)
	return h.call(fn, uint64(dirfd), ptr, n)
}

// twoPathCall calls path_rename or path_link.
func (h *harness) twoPathCall(fn string, fd1 uint32, p1 string, fd2 uint32, p2 string) errno {
	a, an := h.str(p1, scratch)
	b, bn := h.str(p2, scratch+1024)
	if fn == "path_link" {
		return h.call(fn, uint64(fd1), 0, a, an, uint64(fd2), b, bn)
	}
	return h.call(fn, uint64(fd1), a, an, uint64(fd2), b, bn)
}

func TestPathModifyErrno(t *testing.T) {
	for _, tc := range []struct {
		name string
		do   func(h *harness) errno
		want errno
	}{
		{"mkdir", func(h *harness) errno { return h.pathCall("path_create_directory", 3, "nd") }, 0},
		{"mkdir exists", func(h *harness) errno { return h.pathCall("path_create_directory", 3, "d") }, errnoExist},
		{"mkdir over link", func(h *harness) errno { return h.pathCall("path_create_directory", 3, "dangle") }, errnoExist},
		{"mkdir missing parent", func(h *harness) errno { return h.pathCall("path_create_directory", 3, "nope/x") }, errnoNoent},
		{"mkdir under file", func(h *harness) errno { return h.pathCall("path_create_directory", 3, "f/x") }, errnoNotdir},
		{"mkdir read-only", func(h *harness) errno { return h.pathCall("path_create_directory", 4, "x") }, errnoRofs},
		{"mkdir escape", func(h *harness) errno { return h.pathCall("path_create_directory", 3, "../x") }, errnoPerm},
		{"unlink", func(h *harness) errno { return h.pathCall("path_unlink_file", 3, "f") }, 0},
		{"unlink link", func(h *harness) errno { return h.pathCall("path_unlink_file", 3, "ld") }, 0},
		{"unlink dir", func(h *harness) errno { return h.pathCall("path_unlink_file", 3, "d") }, errnoIsdir},
		{"unlink missing", func(h *harness) errno { return h.pathCall("path_unlink_file", 3, "nope") }, errnoNoent},
		{"unlink read-only", func(h *harness) errno { return h.pathCall("path_unlink_file", 4, "r") }, errnoRofs},
		{"rmdir", func(h *harness) errno { return h.pathCall("path_remove_directory", 3, "empty") }, 0},
		{"rmdir nonempty", func(h *harness) errno { return h.pathCall("path_remove_directory", 3, "d") }, errnoNotempty},
		{"rmdir file", func(h *harness) errno { return h.pathCall("path_remove_directory", 3, "f") }, errnoNotdir},
		{"rmdir link to dir", func(h *harness) errno { return h.pathCall("path_remove_directory", 3, "ld") }, errnoNotdir},
		{"rmdir dot", func(h *harness) errno { return h.pathCall("path_remove_directory", 3, "empty/.") }, errnoInval},
		{"rmdir mount root", func(h *harness) errno { return h.pathCall("path_remove_directory", 3, "d/..") }, errnoBusy},
		{"rmdir missing", func(h *harness) errno { return h.pathCall("path_remove_directory", 3, "nope") }, errnoNoent},
		{"rename", func(h *harness) errno { return h.twoPathCall("path_rename", 3, "f", 3, "g") }, 0},
		{"rename over file", func(h *harness) errno { return h.twoPathCall("path_rename", 3, "f", 3, "d/inner") }, 0},
		{"rename dir", func(h *harness) errno { return h.twoPathCall("path_rename", 3, "d", 3, "e") }, 0},
		{"rename over empty dir", func(h *harness) errno { return h.twoPathCall("path_rename", 3, "d", 3, "empty") }, 0},
		{"rename missing", func(h *harness) errno { return h.twoPathCall("path_rename", 3, "nope", 3, "g") }, errnoNoent},
		{"rename file over dir", func(h *harness) errno { return h.twoPathCall("path_rename", 3, "f", 3, "d") }, errnoIsdir},
		{"rename dir over file", func(h *harness) errno { return h.twoPathCall("path_rename", 3, "d", 3, "f") }, errnoNotdir},
		{"rename dir over nonempty", func(h *harness) errno { return h.twoPathCall("path_rename", 3, "empty", 3, "d") }, errnoNotempty},
		{"rename into itself", func(h *harness) errno { return h.twoPathCall("path_rename", 3, "d", 3, "d/x") }, errnoInval},
		{"rename across mounts", func(h *harness) errno { return h.twoPathCall("path_rename", 3, "f", 4, "f") }, errnoXdev},
		{"rename read-only", func(h *harness) errno { return h.twoPathCall("path_rename", 4, "r", 4, "s") }, errnoRofs},
		{"rename escape", func(h *harness) errno { return h.twoPathCall("path_rename", 3, "f", 3, "../f") }, errnoPerm},
		{"link", func(h *harness) errno { return h.twoPathCall("path_link", 3, "f", 3, "h") }, 0},
		{"link exists", func(h *harness) errno { return h.twoPathCall("path_link", 3, "f", 3, "d") }, errnoExist},
		{"link dir", func(h *harness) errno { return h.twoPathCall("path_link", 3, "d", 3, "h") }, errnoPerm},
		{"link missing", func(h *harness) errno { return h.twoPathCall("path_link", 3, "nope", 3, "h") }, errnoNoent},
		{"link read-only", func(h *harness) errno { return h.twoPathCall("path_link", 4, "r", 4, "h") }, errnoRofs},
		{"link across mounts", func(h *harness) errno { return h.twoPathCall("path_link", 4, "r", 3, "h") }, errnoXdev},
		{"symlink", func(h *harness) errno { return h.symlink("anything", 3, "s") }, 0},
		{"symlink absolute", func(h *harness) errno { return h.symlink("/data/f", 3, "s") }, errnoPerm},
		{"symlink root", func(h *harness) errno { return h.symlink("/", 3, "s") }, errnoPerm},
		{"symlink outside", func(h *harness) errno { return h.symlink("/etc/passwd", 3, "s") }, errnoPerm},
		{"symlink relative upward", func(h *harness) errno { return h.symlink("../data/f", 3, "s") }, 0},
		{"symlink exists", func(h *harness) errno { return h.symlink("x", 3, "f") }, errnoExist},
		{"symlink empty", func(h *harness) errno { return h.symlink("", 3, "s") }, errnoNoent},
		{"symlink read-only", func(h *harness) errno { return h.symlink("x", 4, "s") }, errnoRofs},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, _ := fixture(t)
			if e := tc.do(h); e != tc.want {
				t.Fatalf("errno %d, want %d", e, tc.want)
			}
		})
	}
}

func (h *harness) symlink(target string, dirfd uint32, p string) errno {
	a, an := h.str(target, scratch)
	b, bn := h.str(p, scratch+1024)
	return h.call("path_symlink", a, an, uint64(dirfd), b, bn)
}

func TestPathStatAndReadlink(t *testing.T) {
	h, _ := fixture(t)
	stat := func(p string, flags uint64) (uint8, uint64, errno) {
		ptr, n := h.str(p, scratch)
		e := h.call("path_filestat_get", 3, flags, ptr, n, resAt)
		return h.read(resAt+16, 1)[0], h.u64(resAt + 32), e
	}
	if ft, size, e := stat("f", 0); e != 0 || ft != filetypeRegularFile || size != 5 {
		t.Errorf("f: %d %d %d", ft, size, e)
	}
	if ft, _, e := stat("lf", 0); e != 0 || ft != filetypeSymbolicLink {
		t.Errorf("lf nofollow: %d %d", ft, e)
	}
	if ft, size, e := stat("abs", lookupSymlinkFollow); e != 0 || ft != filetypeRegularFile || size != 5 {
		t.Errorf("abs follow: %d %d %d", ft, size, e)
	}
	if ft, _, e := stat(".", 0); e != 0 || ft != filetypeDirectory {
		t.Errorf(".: %d %d", ft, e)
	}
	if _, _, e := stat("nope", 0); e != errnoNoent {
		t.Errorf("nope: %d", e)
	}
	readlink := func(p string, bufLen uint64) (string, errno) {
		ptr, n := h.str(p, scratch)
		e := h.call("path_readlink", 3, ptr, n, resAt, bufLen, resAt-8)
		return string(h.read(resAt, h.u32(resAt-8))), e
	}
	if s, e := readlink("abs", 64); e != 0 || s != "/data/f" {
		t.Errorf("readlink abs: %q %d", s, e)
	}
	if s, e := readlink("abs", 3); e != 0 || s != "/da" {
		t.Errorf("readlink short buffer: %q %d", s, e)
	}
	if _, e := readlink("f", 64); e != errnoInval {
		t.Errorf("readlink file: %d", e)
	}
}
