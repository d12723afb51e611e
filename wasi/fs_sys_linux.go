package wasi

import (
	"io/fs"
	"os"
	"path"
	"syscall"
	"time"
	"unsafe"
)

const (
	utimeOmit         = (1 << 30) - 2
	atSymlinkNofollow = 0x100
)

func timespecOf(t time.Time) syscall.Timespec {
	if t.IsZero() {
		return syscall.Timespec{Nsec: utimeOmit}
	}
	return syscall.NsecToTimespec(t.UnixNano())
}

// utimensat sets the times of name relative to dir (the file dir itself when
// name is empty), leaving zero times unchanged.
func utimensat(dir *os.File, name string, at, mt time.Time, nofollow bool) error {
	ts := [2]syscall.Timespec{timespecOf(at), timespecOf(mt)}
	var p *byte
	if name != "" {
		var err error
		if p, err = syscall.BytePtrFromString(name); err != nil {
			return err
		}
	}
	flags := 0
	if nofollow {
		flags = atSymlinkNofollow
	}
	sc, err := dir.SyscallConn()
	if err != nil {
		return err
	}
	var errno syscall.Errno
	cerr := sc.Control(func(fd uintptr) {
		_, _, errno = syscall.Syscall6(syscall.SYS_UTIMENSAT, fd,
			uintptr(unsafe.Pointer(p)), uintptr(unsafe.Pointer(&ts[0])), uintptr(flags), 0, 0)
	})
	if cerr != nil {
		return cerr
	}
	if errno != 0 {
		return errno
	}
	return nil
}

// sysStat fills the fields of st only the host's stat has.
func sysStat(fi fs.FileInfo, st *filestat) {
	if sys, ok := fi.Sys().(*syscall.Stat_t); ok {
		st.dev = uint64(sys.Dev)
		st.ino = uint64(sys.Ino)
		st.nlink = uint64(sys.Nlink)
		st.atim = uint64(sys.Atim.Sec)*1e9 + uint64(sys.Atim.Nsec)
		st.ctim = uint64(sys.Ctim.Sec)*1e9 + uint64(sys.Ctim.Nsec)
	}
}

// renameat renames with POSIX semantics (a directory may replace an empty
// one), in parent directories opened through root, naming single
// components only.
func renameat(root *os.Root, from, to string) error {
	fd, err := root.Open(path.Dir(from))
	if err != nil {
		return err
	}
	defer fd.Close()
	td, err := root.Open(path.Dir(to))
	if err != nil {
		return err
	}
	defer td.Close()
	return syscall.Renameat(int(fd.Fd()), path.Base(from), int(td.Fd()), path.Base(to))
}

// errXdev is the error of a rename across file systems.
var errXdev = syscall.EXDEV

// fileIDOf identifies the file fi describes.
func fileIDOf(fi fs.FileInfo) fileID {
	if sys, ok := fi.Sys().(*syscall.Stat_t); ok {
		return fileID{uint64(sys.Dev), uint64(sys.Ino)}
	}
	return fileID{}
}

// fileTimes returns the access and modification times of fi in ns.
func fileTimes(fi fs.FileInfo) (atime, mtime int64) {
	mtime = fi.ModTime().UnixNano()
	if sys, ok := fi.Sys().(*syscall.Stat_t); ok {
		return sys.Atim.Nano(), mtime
	}
	return mtime, mtime
}

// renameOut renames rel in root to name in dir.
func renameOut(root *os.Root, rel string, dir *os.File, name string) error {
	pd, err := root.Open(path.Dir(rel))
	if err != nil {
		return err
	}
	defer pd.Close()
	return syscall.Renameat(int(pd.Fd()), path.Base(rel), int(dir.Fd()), name)
}

// renameIn renames name in dir to rel in root.
func renameIn(dir *os.File, name string, root *os.Root, rel string) error {
	pd, err := root.Open(path.Dir(rel))
	if err != nil {
		return err
	}
	defer pd.Close()
	return syscall.Renameat(int(dir.Fd()), name, int(pd.Fd()), path.Base(rel))
}

// linkCount is the number of hard links of fi.
func linkCount(fi fs.FileInfo) uint64 {
	if sys, ok := fi.Sys().(*syscall.Stat_t); ok {
		return uint64(sys.Nlink)
	}
	return 1
}
