//go:build linux

package memalloc

import "golang.org/x/sys/unix"

// adviseHuge asks for transparent huge pages for buf. Advice only.
func adviseHuge(buf []byte) { _ = unix.Madvise(buf, unix.MADV_HUGEPAGE) }
