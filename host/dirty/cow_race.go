//go:build linux && race

package dirty

import (
	"errors"
	"unsafe"
)

// The copy-on-write handler runs without a P, which the race detector's
// atomics need: under -race it is not built and NewCOW reports
// ErrUnsupported.
const cowBuilt = false

type cow struct{}

func startCOW(int, unsafe.Pointer, uint64, uint64, uint64) (*cow, error) {
	return nil, errors.New("not built with -race")
}

func (*cow) close() {}

func (t *Tracker) unprotect(start, end uint64) error { return t.protect(start, end, false) }

func (t *Tracker) copyingNow() bool { return false }

func (*cow) markLifted(start, end uint64)                      {}
func (*cow) clearLifted(start, end uint64)                     {}
func (*cow) takeLifted(end uint64, fn func(start, end uint64)) {}
func (*cow) countLifted(end uint64) uint64                     { return 0 }
