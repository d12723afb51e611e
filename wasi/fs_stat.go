package wasi

import (
	"io/fs"
)

// filestat is the preview1 filestat record.
type filestat struct {
	dev, ino   uint64
	filetype   uint8
	nlink      uint64
	size       uint64
	atim, mtim uint64
	ctim       uint64
}

func filetypeOf(m fs.FileMode) uint8 {
	switch {
	case m.IsRegular():
		return filetypeRegularFile
	case m.IsDir():
		return filetypeDirectory
	case m&fs.ModeSymlink != 0:
		return filetypeSymbolicLink
	case m&fs.ModeDevice != 0:
		if m&fs.ModeCharDevice != 0 {
			return filetypeCharacterDevice
		}
		return filetypeBlockDevice
	case m&fs.ModeCharDevice != 0:
		return filetypeCharacterDevice
	case m&fs.ModeSocket != 0:
		return filetypeSocketStream
	}
	return filetypeUnknown
}

func statOf(fi fs.FileInfo) filestat {
	st := filestat{
		filetype: filetypeOf(fi.Mode()),
		nlink:    1,
		size:     uint64(fi.Size()),
		mtim:     uint64(fi.ModTime().UnixNano()),
	}
	st.atim, st.ctim = st.mtim, st.mtim
	sysStat(fi, &st)
	return st
}

func (st *filestat) put(b []byte) {
	le.PutUint64(b, st.dev)
	le.PutUint64(b[8:], st.ino)
	le.PutUint64(b[16:], uint64(st.filetype))
	le.PutUint64(b[24:], st.nlink)
	le.PutUint64(b[32:], st.size)
	le.PutUint64(b[40:], st.atim)
	le.PutUint64(b[48:], st.mtim)
	le.PutUint64(b[56:], st.ctim)
}
