package wasi

import (
	"context"
	"io/fs"
	"path"
	"strings"

	"github.com/tetratelabs/wazero/api"
)

func pathCreateDirectory(s *System, _ context.Context, mod api.Module, st []uint64) errno {
	loc, en := s.lookup(mod, uint32(st[0]), uint32(st[1]), uint32(st[2]), false, rightPathCreateDirectory)
	if en != errnoSuccess {
		return en
	}
	if loc.fi != nil {
		return errnoExist
	}
	return toErrno(s.w.mkdir(loc))
}

func pathRemoveDirectory(s *System, _ context.Context, mod api.Module, st []uint64) errno {
	p, en := readString(mod, uint32(st[1]), uint32(st[2]))
	if en != errnoSuccess {
		return en
	}
	loc, en := s.lookup(mod, uint32(st[0]), uint32(st[1]), uint32(st[2]), false, rightPathRemoveDirectory)
	if en != errnoSuccess {
		return en
	}
	switch {
	case loc.fi == nil:
		return errnoNoent
	case !loc.fi.IsDir():
		return errnoNotdir
	case path.Base(strings.TrimRight(p, "/")) == ".":
		return errnoInval
	case loc.rel == ".":
		return errnoBusy
	}
	return toErrno(s.w.remove(loc))
}

func pathUnlinkFile(s *System, _ context.Context, mod api.Module, st []uint64) errno {
	loc, en := s.lookup(mod, uint32(st[0]), uint32(st[1]), uint32(st[2]), false, rightPathUnlinkFile)
	if en != errnoSuccess {
		return en
	}
	switch {
	case loc.fi == nil:
		return errnoNoent
	case loc.fi.IsDir():
		return errnoIsdir
	}
	return toErrno(s.w.remove(loc))
}

func pathReadlink(s *System, _ context.Context, mod api.Module, st []uint64) errno {
	loc, en := s.lookup(mod, uint32(st[0]), uint32(st[1]), uint32(st[2]), false, rightPathReadlink)
	if en != errnoSuccess {
		return en
	}
	if loc.fi == nil {
		return errnoNoent
	}
	if loc.fi.Mode()&fs.ModeSymlink == 0 {
		return errnoInval
	}
	target, err := loc.m.root.Readlink(loc.rel)
	if err != nil {
		return toErrno(err)
	}
	buf, ok := memRead(mod, uint32(st[3]), uint32(st[4]))
	if !ok {
		return errnoFault
	}
	n := copy(buf, target)
	if !memWriteU32(mod, uint32(st[5]), uint32(n)) {
		return errnoFault
	}
	return errnoSuccess
}

// pathSymlink creates a symbolic link. An absolute target is refused with
// EPERM, as wasmtime (cap-std) does: the guest's root is not the host's, so
// such a link would mean one thing to the guest and another to every other
// program reading the mount. Links already in a mount may be absolute
// (resolve follows them within the guest's namespace).
func pathSymlink(s *System, _ context.Context, mod api.Module, st []uint64) errno {
	target, en := readString(mod, uint32(st[0]), uint32(st[1]))
	if en != errnoSuccess {
		return en
	}
	switch {
	case target == "":
		return errnoNoent
	case strings.IndexByte(target, 0) >= 0:
		return errnoInval
	case strings.HasPrefix(target, "/"):
		return errnoPerm
	}
	loc, en := s.lookup(mod, uint32(st[2]), uint32(st[3]), uint32(st[4]), false, rightPathSymlink)
	if en != errnoSuccess {
		return en
	}
	switch {
	case loc.fi != nil:
		return errnoExist
	case loc.dirOnly:
		return errnoNoent
	}
	return toErrno(s.w.symlink(target, loc))
}

func pathLink(s *System, _ context.Context, mod api.Module, st []uint64) errno {
	from, en := s.lookup(mod, uint32(st[0]), uint32(st[2]), uint32(st[3]), uint32(st[1])&lookupSymlinkFollow != 0, rightPathLinkSource)
	if en != errnoSuccess {
		return en
	}
	to, en := s.lookup(mod, uint32(st[4]), uint32(st[5]), uint32(st[6]), false, rightPathLinkTarget)
	if en != errnoSuccess {
		return en
	}
	switch {
	case from.fi == nil:
		return errnoNoent
	case from.fi.IsDir():
		return errnoPerm
	case to.fi != nil:
		return errnoExist
	case to.dirOnly:
		return errnoNoent
	}
	return toErrno(s.w.link(from, to))
}

func pathRename(s *System, _ context.Context, mod api.Module, st []uint64) errno {
	from, en := s.lookup(mod, uint32(st[0]), uint32(st[1]), uint32(st[2]), false, rightPathRenameSource)
	if en != errnoSuccess {
		return en
	}
	to, en := s.lookup(mod, uint32(st[3]), uint32(st[4]), uint32(st[5]), false, rightPathRenameTarget)
	if en != errnoSuccess {
		return en
	}
	switch {
	case from.fi == nil:
		return errnoNoent
	case from.rel == "." || to.rel == ".":
		return errnoBusy
	case from.m != to.m:
		return errnoXdev
	case to.dirOnly && !from.fi.IsDir():
		return errnoNotdir
	case to.fi != nil && from.fi.IsDir() && !to.fi.IsDir():
		return errnoNotdir
	case to.fi != nil && !from.fi.IsDir() && to.fi.IsDir():
		return errnoIsdir
	case from.fi.IsDir() && strings.HasPrefix(to.rel+"/", from.rel+"/") && to.rel != from.rel:
		return errnoInval
	}
	if err := s.w.rename(from, to); err != nil {
		return toErrno(err)
	}
	s.fds.renamed(from.mi, from.rel, to.rel)
	return errnoSuccess
}
