//go:build !linux

package wasi

import (
	"io/fs"
	"os"
	"path/filepath"
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

var errXdev = syscall.EXDEV

func fileIDOf(fi fs.FileInfo) fileID {
	if sys, ok := fi.Sys().(*syscall.Stat_t); ok {
		return fileID{uint64(sys.Dev), uint64(sys.Ino)}
	}
	return fileID{}
}

func fileTimes(fi fs.FileInfo) (atime, mtime int64) {
	mtime = fi.ModTime().UnixNano()
	return mtime, mtime
}

// renameOut renames rel in root to name in dir by their host paths.
func renameOut(root *os.Root, rel string, dir *os.File, name string) error {
	return os.Rename(filepath.Join(root.Name(), rel), filepath.Join(dir.Name(), name))
}

func renameIn(dir *os.File, name string, root *os.Root, rel string) error {
	return os.Rename(filepath.Join(dir.Name(), name), filepath.Join(root.Name(), rel))
}

func linkCount(fi fs.FileInfo) uint64 {
	if sys, ok := fi.Sys().(*syscall.Stat_t); ok {
		return uint64(sys.Nlink)
	}
	return 1
}
