package wasi

import (
	"context"
	"io"

	"github.com/tetratelabs/wazero/api"
)

// fdflags bits.
const (
	fdflagAppend   uint16 = 1
	fdflagDsync    uint16 = 2
	fdflagNonblock uint16 = 4
	fdflagRsync    uint16 = 8
	fdflagSync     uint16 = 16
)

// File types.
const (
	filetypeUnknown         uint8 = 0
	filetypeBlockDevice     uint8 = 1
	filetypeCharacterDevice uint8 = 2
	filetypeDirectory       uint8 = 3
	filetypeRegularFile     uint8 = 4
	filetypeSocketDgram     uint8 = 5
	filetypeSocketStream    uint8 = 6
	filetypeSymbolicLink    uint8 = 7
)

var fdFuncs = []hostFunc{
	{"fd_advise", []api.ValueType{i32, i64, i64, i32}, fdAdvise},
	{"fd_allocate", []api.ValueType{i32, i64, i64}, fdAllocate},
	{"fd_close", []api.ValueType{i32}, fdClose},
	{"fd_datasync", []api.ValueType{i32}, fdDatasync},
	{"fd_fdstat_get", []api.ValueType{i32, i32}, fdFdstatGet},
	{"fd_fdstat_set_flags", []api.ValueType{i32, i32}, fdFdstatSetFlags},
	{"fd_fdstat_set_rights", []api.ValueType{i32, i64, i64}, fdFdstatSetRights},
	{"fd_filestat_get", []api.ValueType{i32, i32}, fdFilestatGet},
	{"fd_filestat_set_size", []api.ValueType{i32, i64}, fdFilestatSetSize},
	{"fd_filestat_set_times", []api.ValueType{i32, i64, i64, i32}, fdFilestatSetTimes},
	{"fd_pread", []api.ValueType{i32, i32, i32, i64, i32}, fdPread},
	{"fd_prestat_get", []api.ValueType{i32, i32}, fdPrestatGet},
	{"fd_prestat_dir_name", []api.ValueType{i32, i32, i32}, fdPrestatDirName},
	{"fd_pwrite", []api.ValueType{i32, i32, i32, i64, i32}, fdPwrite},
	{"fd_read", []api.ValueType{i32, i32, i32, i32}, fdRead},
	{"fd_readdir", []api.ValueType{i32, i32, i32, i64, i32}, fdReaddir},
	{"fd_renumber", []api.ValueType{i32, i32}, fdRenumber},
	{"fd_seek", []api.ValueType{i32, i64, i32, i32}, fdSeek},
	{"fd_sync", []api.ValueType{i32}, fdSync},
	{"fd_tell", []api.ValueType{i32, i32}, fdTell},
	{"fd_write", []api.ValueType{i32, i32, i32, i32}, fdWrite},
}

func fdClose(s *System, _ context.Context, _ api.Module, st []uint64) errno {
	fd := uint32(st[0])
	e, ok := s.fds.get(fd)
	if !ok {
		return errnoBadf
	}
	s.fds.remove(fd)
	if e.file != nil {
		if err := e.file.Close(); err != nil {
			return toErrno(err)
		}
	}
	return errnoSuccess
}

// fdRenumber moves fd from onto fd to, which must be open (EBADF
// otherwise, as in wasmtime) and is closed first. Either may be a preopen:
// a moved preopen stays one at its new number.
func fdRenumber(s *System, _ context.Context, _ api.Module, st []uint64) errno {
	from, to := uint32(st[0]), uint32(st[1])
	e, ok := s.fds.get(from)
	if !ok {
		return errnoBadf
	}
	old, ok := s.fds.get(to)
	if !ok {
		return errnoBadf
	}
	if from == to {
		return errnoSuccess
	}
	if old.file != nil {
		old.file.Close()
	}
	s.fds.remove(from)
	s.fds.m[to] = e
	return errnoSuccess
}

func fdFdstatGet(s *System, _ context.Context, mod api.Module, st []uint64) errno {
	e, ok := s.fds.get(uint32(st[0]))
	if !ok {
		return errnoBadf
	}
	buf, ok := memRead(mod, uint32(st[1]), 24)
	if !ok {
		return errnoFault
	}
	ft := filetypeCharacterDevice
	base, inh := e.rightsBase, e.rightsInheriting
	switch e.kind {
	case kindDir:
		ft = filetypeDirectory
	case kindFile:
		ft = filetypeRegularFile
		if fi, err := e.file.Stat(); err == nil {
			ft = filetypeOf(fi.Mode())
		}
	}
	clear(buf)
	buf[0] = ft
	le.PutUint16(buf[2:], e.fdflags)
	le.PutUint64(buf[8:], base)
	le.PutUint64(buf[16:], inh)
	return errnoSuccess
}

func fdFdstatSetFlags(s *System, _ context.Context, _ api.Module, st []uint64) errno {
	e, ok := s.fds.get(uint32(st[0]))
	if !ok {
		return errnoBadf
	}
	flags := uint16(st[1])
	if flags&(fdflagDsync|fdflagRsync|fdflagSync) != 0 {
		return errnoInval
	}
	if e.kind == kindDir {
		return errnoIsdir
	}
	if en := e.need(rightFdFdstatSetFlags); en != errnoSuccess {
		return en
	}
	e.fdflags = flags & (fdflagAppend | fdflagNonblock)
	return errnoSuccess
}

// fdFdstatSetRights only ever narrows the rights of an fd: asking for one
// it does not have is ENOTCAPABLE. The imports check them (fdEntry.need).
func fdFdstatSetRights(s *System, _ context.Context, _ api.Module, st []uint64) errno {
	e, ok := s.fds.get(uint32(st[0]))
	if !ok {
		return errnoBadf
	}
	base, inh := st[1], st[2]
	if base&^e.rightsBase != 0 || inh&^e.rightsInheriting != 0 {
		return errnoNotcapable
	}
	e.rightsBase, e.rightsInheriting = base, inh
	return errnoSuccess
}

func fdPrestatGet(s *System, _ context.Context, mod api.Module, st []uint64) errno {
	e, ok := s.fds.get(uint32(st[0]))
	if !ok || !e.preopen {
		return errnoBadf
	}
	name := s.mounts[e.mount].guest
	buf, ok := memRead(mod, uint32(st[1]), 8)
	if !ok {
		return errnoFault
	}
	clear(buf)
	le.PutUint32(buf[4:], uint32(len(name)))
	return errnoSuccess
}

func fdPrestatDirName(s *System, _ context.Context, mod api.Module, st []uint64) errno {
	e, ok := s.fds.get(uint32(st[0]))
	if !ok || !e.preopen {
		return errnoBadf
	}
	name := s.mounts[e.mount].guest
	n := uint32(st[2])
	if n < uint32(len(name)) {
		return errnoNametoolong
	}
	buf, ok := memRead(mod, uint32(st[1]), uint32(len(name)))
	if !ok {
		return errnoFault
	}
	copy(buf, name)
	return errnoSuccess
}

func fdRead(s *System, ctx context.Context, mod api.Module, st []uint64) errno {
	return s.readv(ctx, mod, st, -1)
}

func fdPread(s *System, ctx context.Context, mod api.Module, st []uint64) errno {
	if int64(st[3]) < 0 {
		return errnoInval
	}
	return s.readv(ctx, mod, st, int64(st[3]))
}

// ioCheck checks e for fd_read (at < 0) or fd_pread, or with write for
// fd_write or fd_pwrite: first its kind (EBADF against the direction of
// stdio or the event, EISDIR reading a directory, ESPIPE for a positioned
// call on a stream), then its rights (fd_read or fd_write, and fd_seek to
// give a position).
func (e *fdEntry) ioCheck(write bool, at int64) errno {
	in := e.kind == kindStdin || e.kind == kindEvent
	out := e.kind == kindStdout || e.kind == kindStderr
	need := rightFdRead
	if write {
		in, out, need = out, in, rightFdWrite
	}
	switch {
	case out || (write && e.kind == kindDir):
		return errnoBadf
	case e.kind == kindDir:
		return errnoIsdir
	case in && at >= 0:
		return errnoSpipe
	case e.kind == kindFile && at >= 0:
		need |= rightFdSeek
	}
	return e.need(need)
}

// readv implements fd_read (at < 0) and fd_pread; the result pointer is the
// last parameter.
func (s *System) readv(ctx context.Context, mod api.Module, st []uint64, at int64) errno {
	fd, iovs, n := uint32(st[0]), uint32(st[1]), uint32(st[2])
	resPtr := uint32(st[3])
	if at >= 0 {
		resPtr = uint32(st[4])
	}
	e, ok := s.fds.get(fd)
	if !ok {
		return errnoBadf
	}
	if en := e.ioCheck(false, at); en != errnoSuccess {
		return en
	}
	iov, en := iovecs(mod, iovs, n)
	if en != errnoSuccess {
		return en
	}
	var nread int
	switch e.kind {
	case kindStdin:
		var unw bool
		nread, en, unw = s.readStdin(ctx, mod, e, iov)
		if unw {
			return errnoSuccess
		}
		if en != errnoSuccess {
			return en
		}
	case kindEvent:
		if nread, en = s.readEvent(iov); en != errnoSuccess {
			return en
		}
	case kindFile:
		if !e.read {
			return errnoBadf
		}
		off := e.offset
		if at >= 0 {
			off = at
		}
		for _, b := range iov {
			s.releaseMem(b)
			c, err := e.file.ReadAt(b, off)
			nread += c
			off += int64(c)
			if err == io.EOF || c < len(b) {
				break
			}
			if err != nil {
				return toErrno(err)
			}
		}
		if at < 0 {
			e.offset = off
		}
	}
	if !memWriteU32(mod, resPtr, uint32(nread)) {
		return errnoFault
	}
	return errnoSuccess
}

// readStdin reads fd 0. A blocking read waits for data; with Hooks set it
// also watches Interrupt and reports unw when the host unwinds.
func (s *System) readStdin(ctx context.Context, mod api.Module, e *fdEntry, iov [][]byte) (int, errno, bool) {
	in := s.stdin
	in.poll()
	if !in.ready() && e.fdflags&fdflagNonblock != 0 {
		in.wait()
		return 0, errnoAgain, false
	}
	intr := s.intr
	for !in.ready() {
		select {
		case c := <-in.wait():
			in.accept(c)
		case <-intr:
			if s.hooks != nil && s.hooks.Enter(ctx, mod) {
				return 0, 0, true
			}
			intr = nil
		case <-ctx.Done():
			return 0, errnoIntr, false
		}
	}
	n, en := in.take(iov)
	return n, en, false
}

func fdWrite(s *System, _ context.Context, mod api.Module, st []uint64) errno {
	return s.writev(mod, st, -1)
}

func fdPwrite(s *System, _ context.Context, mod api.Module, st []uint64) errno {
	if int64(st[3]) < 0 {
		return errnoInval
	}
	return s.writev(mod, st, int64(st[3]))
}

// writev implements fd_write (at < 0) and fd_pwrite.
func (s *System) writev(mod api.Module, st []uint64, at int64) errno {
	fd, iovs, n := uint32(st[0]), uint32(st[1]), uint32(st[2])
	resPtr := uint32(st[3])
	if at >= 0 {
		resPtr = uint32(st[4])
	}
	e, ok := s.fds.get(fd)
	if !ok {
		return errnoBadf
	}
	if en := e.ioCheck(true, at); en != errnoSuccess {
		return en
	}
	iov, en := iovecs(mod, iovs, n)
	if en != errnoSuccess {
		return en
	}
	var written int
	switch e.kind {
	case kindStdout, kindStderr:
		w := s.stdout
		if e.kind == kindStderr {
			w = s.stderr
		}
		var err error
		written, err = w.Write(gather(iov))
		if err != nil {
			return errnoIo
		}
	case kindFile:
		if !e.write {
			return errnoBadf
		}
		off := at
		if at < 0 {
			off = e.offset
			if e.fdflags&fdflagAppend != 0 {
				fi, err := e.file.Stat()
				if err != nil {
					return toErrno(err)
				}
				off = fi.Size()
			}
		}
		c, err := s.w.writeAt(e, gather(iov), off)
		written = c
		if at < 0 {
			e.offset = off + int64(c)
		}
		if err != nil && c == 0 {
			return toErrno(err)
		}
	}
	if !memWriteU32(mod, resPtr, uint32(written)) {
		return errnoFault
	}
	return errnoSuccess
}

// gather joins iovecs, without copying when there is one.
func gather(iov [][]byte) []byte {
	if len(iov) == 1 {
		return iov[0]
	}
	var b []byte
	for _, v := range iov {
		b = append(b, v...)
	}
	return b
}
