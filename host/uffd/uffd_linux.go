//go:build linux

package uffd

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// Flags of userfaultfd(2), ioctl numbers and modes (linux/userfaultfd.h).
const (
	UserModeOnly = 1 // userfaultfd(2) flag UFFD_USER_MODE_ONLY
	API          = 0xAA

	IoctlAPI          = 0xC018AA3F // _IOWR(0xAA, 0x3F, struct uffdio_api)
	IoctlRegister     = 0xC020AA00 // _IOWR(0xAA, 0x00, struct uffdio_register)
	IoctlUnregister   = 0x8010AA01 // _IOR(0xAA, 0x01, struct uffdio_range)
	IoctlWake         = 0x8010AA02 // _IOR(0xAA, 0x02, struct uffdio_range)
	IoctlCopy         = 0xC028AA03 // _IOWR(0xAA, 0x03, struct uffdio_copy)
	IoctlZeropage     = 0xC020AA04 // _IOWR(0xAA, 0x04, struct uffdio_zeropage)
	IoctlWriteProtect = 0xC018AA06 // _IOWR(0xAA, 0x06, struct uffdio_writeprotect)

	FeatureWPUnpopulated = 1 << 13 // unpopulated pages count as protected
	FeatureWPAsync       = 1 << 15 // the kernel resolves write faults itself

	RegisterModeMissing = 1 << 0
	RegisterModeWP      = 1 << 1

	WriteProtectModeWP    = 1 << 0 // set protection
	WriteProtectModeClear = 0      // clear protection and wake

	EventPagefault = 0x12
)

// APIArg is struct uffdio_api.
type APIArg struct{ API, Features, Ioctls uint64 }

// RegisterArg is struct uffdio_register.
type RegisterArg struct{ Start, Len, Mode, Ioctls uint64 }

// Range is struct uffdio_range.
type Range struct{ Start, Len uint64 }

// CopyArg is struct uffdio_copy.
type CopyArg struct {
	Dst, Src, Len, Mode uint64
	Copied              int64
}

// ZeropageArg is struct uffdio_zeropage.
type ZeropageArg struct {
	Range    Range
	Mode     uint64
	Zeropage int64
}

// WriteProtectArg is struct uffdio_writeprotect.
type WriteProtectArg struct{ Start, Len, Mode uint64 }

// Msg is struct uffd_msg for a page fault.
type Msg struct {
	Event    uint8
	_        [7]uint8
	Flags    uint64
	Address  uint64
	Reserved uint64
}

// Ioctl calls ioctl(fd, req, arg).
func Ioctl(fd int, req uintptr, arg unsafe.Pointer) error {
	if _, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), req, uintptr(arg)); errno != 0 {
		return errno
	}
	return nil
}
