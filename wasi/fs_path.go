package wasi

import (
	"context"
	"io/fs"
	"os"
	"syscall"

	"github.com/tetratelabs/wazero/api"
)

// path_open flags.
const (
	oflagCreat     = 1
	oflagDirectory = 2
	oflagExcl      = 4
	oflagTrunc     = 8

	lookupSymlinkFollow = 1
)

var pathFuncs = []hostFunc{
	{"path_create_directory", []api.ValueType{i32, i32, i32}, pathCreateDirectory},
	{"path_filestat_get", []api.ValueType{i32, i32, i32, i32, i32}, pathFilestatGet},
	{"path_filestat_set_times", []api.ValueType{i32, i32, i32, i32, i64, i64, i32}, pathFilestatSetTimes},
	{"path_link", []api.ValueType{i32, i32, i32, i32, i32, i32, i32}, pathLink},
	{"path_open", []api.ValueType{i32, i32, i32, i32, i32, i64, i64, i32, i32}, pathOpen},
	{"path_readlink", []api.ValueType{i32, i32, i32, i32, i32, i32}, pathReadlink},
	{"path_remove_directory", []api.ValueType{i32, i32, i32}, pathRemoveDirectory},
	{"path_rename", []api.ValueType{i32, i32, i32, i32, i32, i32}, pathRename},
	{"path_symlink", []api.ValueType{i32, i32, i32, i32, i32}, pathSymlink},
	{"path_unlink_file", []api.ValueType{i32, i32, i32}, pathUnlinkFile},
}

func readString(mod api.Module, ptr, n uint32) (string, errno) {
	b, ok := memRead(mod, ptr, n)
	if !ok {
		return "", errnoFault
	}
	return string(b), errnoSuccess
}

// lookup reads a path argument and resolves it against dirfd, which must
// hold the rights need.
func (s *System) lookup(mod api.Module, dirfd, ptr, n uint32, follow bool, need uint64) (*location, errno) {
	dir, en := s.dirEntry(dirfd)
	if en != errnoSuccess {
		return nil, en
	}
	if en := dir.need(need); en != errnoSuccess {
		return nil, en
	}
	p, en := readString(mod, ptr, n)
	if en != errnoSuccess {
		return nil, en
	}
	return s.resolve(dir, p, follow)
}

// hostFlags are the host open flags of an entry; appends are done by the
// fd layer, so O_APPEND is never passed on.
func hostFlags(read, write bool, fdflags uint16) int {
	flag := os.O_RDONLY
	switch {
	case read && write:
		flag = os.O_RDWR
	case write:
		flag = os.O_WRONLY
	}
	if fdflags&(fdflagSync|fdflagRsync) != 0 {
		flag |= os.O_SYNC
	} else if fdflags&fdflagDsync != 0 {
		flag |= syscall.O_DSYNC
	}
	return flag
}

func pathOpen(s *System, _ context.Context, mod api.Module, st []uint64) errno {
	dirfd, dirflags, pathPtr, pathLen := uint32(st[0]), uint32(st[1]), uint32(st[2]), uint32(st[3])
	oflags, fdflags, fdPtr := uint16(st[4]), uint16(st[7]), uint32(st[8])
	req := openRequest{base: st[5], inheriting: st[6], oflags: oflags, fdflags: fdflags}
	if pathLen == 0 {
		return errnoInval
	}
	creat, dirOnly := oflags&oflagCreat != 0, oflags&oflagDirectory != 0
	// O_CREAT|O_EXCL never follows a final symbolic link: it must fail
	// on one, dangling or not.
	follow := dirflags&lookupSymlinkFollow != 0 && !(creat && oflags&oflagExcl != 0)
	dir, en := s.dirEntry(dirfd)
	if en != errnoSuccess {
		return en
	}
	loc, en := s.lookup(mod, dirfd, pathPtr, pathLen, follow, req.dirNeeds(dir))
	if en != errnoSuccess {
		return en
	}
	if creat && dirOnly {
		return errnoInval
	}
	isDir := loc.fi != nil && loc.fi.IsDir()
	base, inh, en := req.rights(dir, isDir)
	if en == errnoSuccess {
		en = req.truncates(dir, base)
	}
	if en != errnoSuccess {
		return en
	}
	read, write := base&rightFdRead != 0, base&rightFdWrite != 0
	if isDir {
		read, write = true, req.writes()
	}
	e := &fdEntry{mount: loc.mi, rel: loc.rel, read: read, write: write,
		rightsBase: base, rightsInheriting: inh,
		fdflags: fdflags & (fdflagAppend | fdflagNonblock | fdflagDsync | fdflagRsync | fdflagSync)}
	flag := hostFlags(read, write, e.fdflags)
	var f *os.File
	var err error
	switch fi := loc.fi; {
	case fi == nil && !creat:
		return errnoNoent
	case fi == nil:
		if loc.dirOnly {
			return errnoIsdir
		}
		f, err = s.w.create(loc, flag, oflags&oflagExcl != 0)
	case creat && oflags&oflagExcl != 0:
		return errnoExist
	case fi.Mode()&fs.ModeSymlink != 0:
		return errnoLoop
	case fi.IsDir():
		if write {
			return errnoIsdir
		}
		f, err = loc.m.root.Open(loc.rel)
	case dirOnly:
		return errnoNotdir
	case oflags&oflagTrunc != 0:
		if loc.m.readOnly {
			return errnoRofs
		}
		f, err = s.w.openTrunc(loc, flag)
	default:
		if write && loc.m.readOnly {
			return errnoRofs
		}
		f, err = loc.m.root.OpenFile(loc.rel, flag, 0)
	}
	if err != nil {
		return toErrno(err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return toErrno(err)
	}
	e.file = f
	if dirOnly && !fi.IsDir() {
		f.Close()
		return errnoNotdir
	}
	e.kind = kindFile
	if fi.IsDir() {
		e.kind, e.read, e.write = kindDir, true, false
	}
	if fi.IsDir() != isDir {
		// The path changed kind since it was looked up.
		if e.rightsBase, e.rightsInheriting, en = req.rights(dir, fi.IsDir()); en != errnoSuccess {
			f.Close()
			return en
		}
	}
	fd, ok := s.fds.insert(e)
	if !ok {
		f.Close()
		return errnoMfile
	}
	if !memWriteU32(mod, fdPtr, fd) {
		s.fds.remove(fd)
		f.Close()
		return errnoFault
	}
	return errnoSuccess
}

func pathFilestatGet(s *System, _ context.Context, mod api.Module, st []uint64) errno {
	loc, en := s.lookup(mod, uint32(st[0]), uint32(st[2]), uint32(st[3]), uint32(st[1])&lookupSymlinkFollow != 0, rightPathFilestatGet)
	if en != errnoSuccess {
		return en
	}
	if loc.fi == nil {
		return errnoNoent
	}
	buf, ok := memRead(mod, uint32(st[4]), 64)
	if !ok {
		return errnoFault
	}
	fs := statOf(loc.fi)
	s.j.adjustLinks(&fs)
	fs.put(buf)
	return errnoSuccess
}

func pathFilestatSetTimes(s *System, _ context.Context, mod api.Module, st []uint64) errno {
	follow := uint32(st[1])&lookupSymlinkFollow != 0
	loc, en := s.lookup(mod, uint32(st[0]), uint32(st[2]), uint32(st[3]), follow, rightPathFilestatSetTimes)
	if en != errnoSuccess {
		return en
	}
	at, mt, en := s.times(int64(st[4]), int64(st[5]), uint16(st[6]))
	if en != errnoSuccess {
		return en
	}
	if loc.fi == nil {
		return errnoNoent
	}
	dir, err := loc.m.root.Open(loc.parent())
	if err != nil {
		return toErrno(err)
	}
	defer dir.Close()
	return toErrno(s.w.chtimes(loc, dir, loc.name(), at, mt, follow))
}
