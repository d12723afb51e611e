//go:build linux

package lazy

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// The kernel's interface (linux/userfaultfd.h).
const (
	uffdAPI            = 0xAA
	uffdioAPI          = 0xC018AA3F // _IOWR(0xAA, 0x3F, struct uffdio_api)
	uffdioRegister     = 0xC020AA00 // _IOWR(0xAA, 0x00, struct uffdio_register)
	uffdioUnregister   = 0x8010AA01 // _IOR(0xAA, 0x01, struct uffdio_range)
	uffdioWake         = 0x8010AA02 // _IOR(0xAA, 0x02, struct uffdio_range)
	uffdioCopy         = 0xC028AA03 // _IOWR(0xAA, 0x03, struct uffdio_copy)
	uffdioZeropage     = 0xC020AA04 // _IOWR(0xAA, 0x04, struct uffdio_zeropage)
	registerModeMiss   = 1 << 0
	uffdEventPagefault = 0x12
)

type uffdioAPIArg struct{ api, features, ioctls uint64 }

type uffdioRegisterArg struct{ start, len, mode, ioctls uint64 }

type uffdioRange struct{ start, len uint64 }

type uffdioCopyArg struct {
	dst, src, len, mode uint64
	copied              int64
}

type uffdioZeropageArg struct {
	rng      uffdioRange
	mode     uint64
	zeropage int64
}

// uffdMsg is struct uffd_msg for a page fault.
type uffdMsg struct {
	event    uint8
	_        [7]uint8
	flags    uint64
	address  uint64
	reserved uint64
}

func ioctl(fd int, req uintptr, arg unsafe.Pointer) error {
	if _, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), req, uintptr(arg)); errno != 0 {
		return errno
	}
	return nil
}
