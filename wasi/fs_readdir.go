package wasi

import (
	"context"
	"io"
	"sort"
	"syscall"

	"github.com/tetratelabs/wazero/api"
)

// direntSize is the size of a dirent header; the name follows it.
const direntSize = 24

// dirCursor holds the listing fd_readdir serves. Cookie c names the entry
// at index c, so cookies stay stable until the guest rewinds to cookie 0,
// which lists the directory again.
type dirCursor struct {
	entries []dirent
}

type dirent struct {
	name     string
	ino      uint64
	filetype uint8
}

// listDir reads the directory open as e, sorted by name, after "." and "..".
func listDir(e *fdEntry) (*dirCursor, error) {
	if _, err := e.file.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
	des, err := e.file.ReadDir(-1)
	if err != nil {
		return nil, err
	}
	sort.Slice(des, func(i, j int) bool { return des[i].Name() < des[j].Name() })
	c := &dirCursor{entries: make([]dirent, 0, len(des)+2)}
	var self uint64
	if fi, err := e.file.Stat(); err == nil {
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			self = uint64(st.Ino)
		}
	}
	c.entries = append(c.entries,
		dirent{".", self, filetypeDirectory},
		dirent{"..", 0, filetypeDirectory})
	for _, de := range des {
		d := dirent{name: de.Name(), filetype: filetypeOf(de.Type())}
		if fi, err := de.Info(); err == nil {
			if st, ok := fi.Sys().(*syscall.Stat_t); ok {
				d.ino = uint64(st.Ino)
			}
		}
		c.entries = append(c.entries, d)
	}
	return c, nil
}

func fdReaddir(s *System, _ context.Context, mod api.Module, st []uint64) errno {
	fd, bufPtr, bufLen, cookie, usedPtr := uint32(st[0]), uint32(st[1]), uint32(st[2]), st[3], uint32(st[4])
	e, ok := s.fds.get(fd)
	if !ok {
		return errnoBadf
	}
	if e.kind != kindDir {
		return errnoNotdir
	}
	if en := e.need(rightFdReaddir); en != errnoSuccess {
		return en
	}
	buf, ok := memRead(mod, bufPtr, bufLen)
	if !ok {
		return errnoFault
	}
	if cookie == 0 || e.dir == nil {
		c, err := listDir(e)
		if err != nil {
			return toErrno(err)
		}
		e.dir = c
	}
	if int64(cookie) < 0 {
		return errnoInval
	}
	used := uint32(0)
	ents := e.dir.entries
	for i := cookie; i < uint64(len(ents)) && used < bufLen; i++ {
		d := ents[i]
		var hdr [direntSize]byte
		le.PutUint64(hdr[0:], i+1)
		le.PutUint64(hdr[8:], d.ino)
		le.PutUint32(hdr[16:], uint32(len(d.name)))
		hdr[20] = d.filetype
		used += uint32(copy(buf[used:], hdr[:]))
		used += uint32(copy(buf[used:], d.name))
	}
	if !memWriteU32(mod, usedPtr, used) {
		return errnoFault
	}
	return errnoSuccess
}
