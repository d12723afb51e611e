//go:build linux

package uffd

import (
	"testing"
	"unsafe"
)

// TestArgSizes checks each argument struct against the size that its
// ioctl number encodes (_IOC_SIZE, bits 16-29), and the fault message
// against struct uffd_msg's 32 bytes.
func TestArgSizes(t *testing.T) {
	for _, c := range []struct {
		name string
		req  uint32
		size uintptr
	}{
		{"UFFDIO_API", IoctlAPI, unsafe.Sizeof(APIArg{})},
		{"UFFDIO_REGISTER", IoctlRegister, unsafe.Sizeof(RegisterArg{})},
		{"UFFDIO_UNREGISTER", IoctlUnregister, unsafe.Sizeof(Range{})},
		{"UFFDIO_WAKE", IoctlWake, unsafe.Sizeof(Range{})},
		{"UFFDIO_COPY", IoctlCopy, unsafe.Sizeof(CopyArg{})},
		{"UFFDIO_ZEROPAGE", IoctlZeropage, unsafe.Sizeof(ZeropageArg{})},
		{"UFFDIO_WRITEPROTECT", IoctlWriteProtect, unsafe.Sizeof(WriteProtectArg{})},
	} {
		if got := uintptr(c.req>>16) & 0x3fff; got != c.size {
			t.Errorf("%s: the ioctl number says %d bytes, the struct has %d", c.name, got, c.size)
		}
		if typ := (c.req >> 8) & 0xff; typ != API {
			t.Errorf("%s: ioctl type %#x, want %#x", c.name, typ, API)
		}
	}
	if n := unsafe.Sizeof(Msg{}); n != 32 {
		t.Errorf("struct uffd_msg has 32 bytes, Msg %d", n)
	}
}
