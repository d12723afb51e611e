//go:build linux

package ckpt

import (
	"os"

	"golang.org/x/sys/unix"
)

// datasync makes f's data durable (fdatasync: not its times).
func datasync(f *os.File) error {
	return withFd(f, unix.Fdatasync)
}

// punch frees n bytes of f at off, its size unchanged.
func punch(f *os.File, off, n int64) error {
	if n <= 0 {
		return nil
	}
	return withFd(f, func(fd int) error {
		return unix.Fallocate(fd, unix.FALLOC_FL_PUNCH_HOLE|unix.FALLOC_FL_KEEP_SIZE, off, n)
	})
}
