package wasi

import (
	"context"
	"time"

	"github.com/tetratelabs/wazero/api"
)

// whence values of fd_seek.
const (
	whenceSet = 0
	whenceCur = 1
	whenceEnd = 2
)

// fstflags bits of the set_times calls.
const (
	fstflagAtim    = 1
	fstflagAtimNow = 2
	fstflagMtim    = 4
	fstflagMtimNow = 8
)

// Advice values of fd_advise.
const adviceNoreuse = 5

func fdSeek(s *System, _ context.Context, mod api.Module, st []uint64) errno {
	return s.seek(mod, uint32(st[0]), int64(st[1]), uint32(st[2]), uint32(st[3]))
}

func fdTell(s *System, _ context.Context, mod api.Module, st []uint64) errno {
	return s.seek(mod, uint32(st[0]), 0, whenceCur, uint32(st[1]))
}

func (s *System) seek(mod api.Module, fd uint32, off int64, whence, resPtr uint32) errno {
	e, ok := s.fds.get(fd)
	if !ok {
		return errnoBadf
	}
	switch e.kind {
	case kindDir:
		return errnoIsdir
	case kindStdin, kindStdout, kindStderr, kindEvent:
		return errnoSpipe
	}
	// fd_seek implies fd_tell; a seek by 0 from the current offset is a
	// tell.
	if off != 0 || whence != whenceCur || e.need(rightFdTell) != errnoSuccess {
		if en := e.need(rightFdSeek); en != errnoSuccess {
			return en
		}
	}
	var base int64
	switch whence {
	case whenceSet:
	case whenceCur:
		base = e.offset
	case whenceEnd:
		fi, err := e.file.Stat()
		if err != nil {
			return toErrno(err)
		}
		base = fi.Size()
	default:
		return errnoInval
	}
	n := base + off
	if n < 0 || (off > 0 && n < base) {
		return errnoInval
	}
	e.offset = n
	if !memWriteU64(mod, resPtr, uint64(n)) {
		return errnoFault
	}
	return errnoSuccess
}

func fdFilestatGet(s *System, _ context.Context, mod api.Module, st []uint64) errno {
	e, ok := s.fds.get(uint32(st[0]))
	if !ok {
		return errnoBadf
	}
	if en := e.need(rightFdFilestatGet); en != errnoSuccess {
		return en
	}
	buf, ok := memRead(mod, uint32(st[1]), 64)
	if !ok {
		return errnoFault
	}
	var fs filestat
	switch e.kind {
	case kindStdin, kindStdout, kindStderr, kindEvent:
		fs = filestat{filetype: filetypeCharacterDevice, nlink: 1}
	default:
		fi, err := e.file.Stat()
		if err != nil {
			return toErrno(err)
		}
		fs = statOf(fi)
		s.j.adjustLinks(&fs)
	}
	fs.put(buf)
	return errnoSuccess
}

func fdFilestatSetSize(s *System, _ context.Context, _ api.Module, st []uint64) errno {
	e, ok := s.fds.get(uint32(st[0]))
	if !ok {
		return errnoBadf
	}
	size := int64(st[1])
	switch {
	case e.kind == kindDir:
		return errnoIsdir
	case e.kind != kindFile:
		return errnoBadf
	}
	if en := e.need(rightFdFilestatSetSize); en != errnoSuccess {
		return en
	}
	switch {
	case !e.write:
		return errnoBadf
	case size < 0:
		return errnoInval
	}
	return toErrno(s.w.truncate(e, size))
}

func fdFilestatSetTimes(s *System, _ context.Context, _ api.Module, st []uint64) errno {
	e, ok := s.fds.get(uint32(st[0]))
	if !ok {
		return errnoBadf
	}
	if e.mount < 0 {
		return errnoBadf
	}
	if en := e.need(rightFdFilestatSetTimes); en != errnoSuccess {
		return en
	}
	at, mt, en := s.times(int64(st[1]), int64(st[2]), uint16(st[3]))
	if en != errnoSuccess {
		return en
	}
	return toErrno(s.w.chtimesFile(e, at, mt))
}

// times decodes the arguments of the set_times calls; a zero time means
// "leave unchanged".
func (s *System) times(atim, mtim int64, flags uint16) (at, mt time.Time, en errno) {
	if flags&^0xf != 0 ||
		flags&(fstflagAtim|fstflagAtimNow) == fstflagAtim|fstflagAtimNow ||
		flags&(fstflagMtim|fstflagMtimNow) == fstflagMtim|fstflagMtimNow {
		return at, mt, errnoInval
	}
	now := time.Unix(0, s.walltimeNanos())
	switch {
	case flags&fstflagAtim != 0:
		at = time.Unix(0, atim)
	case flags&fstflagAtimNow != 0:
		at = now
	}
	switch {
	case flags&fstflagMtim != 0:
		mt = time.Unix(0, mtim)
	case flags&fstflagMtimNow != 0:
		mt = now
	}
	return at, mt, errnoSuccess
}

func fdAdvise(s *System, _ context.Context, _ api.Module, st []uint64) errno {
	e, ok := s.fds.get(uint32(st[0]))
	if !ok {
		return errnoBadf
	}
	if int64(st[1]) < 0 || int64(st[2]) < 0 || uint32(st[3]) > adviceNoreuse {
		return errnoInval
	}
	if e.kind == kindDir {
		return errnoBadf
	}
	return e.need(rightFdAdvise)
}

func fdAllocate(s *System, _ context.Context, _ api.Module, st []uint64) errno {
	e, ok := s.fds.get(uint32(st[0]))
	if !ok {
		return errnoBadf
	}
	off, n := int64(st[1]), int64(st[2])
	if off < 0 || n <= 0 || off+n < off {
		return errnoInval
	}
	switch {
	case e.kind == kindDir:
		return errnoIsdir
	case e.kind != kindFile:
		return errnoBadf
	}
	if en := e.need(rightFdAllocate); en != errnoSuccess {
		return en
	}
	if !e.write {
		return errnoBadf
	}
	fi, err := e.file.Stat()
	if err != nil {
		return toErrno(err)
	}
	if fi.Size() >= off+n {
		return errnoSuccess
	}
	return toErrno(s.w.truncate(e, off+n))
}

func fdSync(s *System, _ context.Context, _ api.Module, st []uint64) errno {
	return s.sync(uint32(st[0]), rightFdSync)
}

func fdDatasync(s *System, _ context.Context, _ api.Module, st []uint64) errno {
	return s.sync(uint32(st[0]), rightFdDatasync)
}

func (s *System) sync(fd uint32, need uint64) errno {
	e, ok := s.fds.get(fd)
	if !ok {
		return errnoBadf
	}
	if en := e.need(need); en != errnoSuccess {
		return en
	}
	if e.file == nil {
		return errnoSuccess
	}
	if e.kind == kindFile && !e.write {
		return errnoBadf
	}
	if err := e.file.Sync(); err != nil && e.kind != kindDir {
		return toErrno(err)
	}
	return errnoSuccess
}
