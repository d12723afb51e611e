//go:build !linux

package wasi

import (
	"io/fs"
	"os"
	"syscall"
	"time"
)

// utimensat is not implemented off Linux.
func utimensat(dir *os.File, name string, at, mt time.Time, nofollow bool) error {
	return errnoError(errnoNosys)
}

// sysStat fills the fields of st only the host's stat has.
func sysStat(fi fs.FileInfo, st *filestat) {
	if sys, ok := fi.Sys().(*syscall.Stat_t); ok {
		st.dev = uint64(sys.Dev)
		st.ino = uint64(sys.Ino)
		st.nlink = uint64(sys.Nlink)
	}
}

func renameat(root *os.Root, from, to string) error {
	return root.Rename(from, to)
}
