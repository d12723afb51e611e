//go:build linux

package dirty

import (
	"github.com/librahost/librahost/host/uffd"
	"runtime"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// A wrong guess is costly: a guest that wrote little in the interval a
// probe watched (one that was waiting, or paused again at once) may
// rewrite all of its memory in the next, and fault on every page of it.
// So while tracking is on, a guard checks every so often, as the guest
// runs, how much was written since the last Collect, and turns tracking
// off once that passes a limit: the faults are bounded by the limit.

// SetLimit makes tracking turn itself off once more than limit bytes are
// written between two Collects (0: never). Tripped then reports it, and
// the next Collect reports everything.
func (t *Tracker) SetLimit(limit uint64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.guardLimit = limit
}

// Tripped reports whether the limit turned tracking off since the last
// call.
func (t *Tracker) Tripped() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	tr := t.tripped
	t.tripped = false
	return tr
}

// Costs returns what a write fault on a protected page cost, and what
// reading a page cost, measured at New on this machine: tracking pays
// while the pages written between two captures cost less in faults than
// reading (hashing) the others would.
func (t *Tracker) Costs() (fault, read time.Duration) { return t.fault, t.read }

// FaultUnit returns how many bytes a write fault lifts the protection of
// (a page; TrackUnit for a copy-on-write tracker), and the page size, which
// Costs' read is for.
func (t *Tracker) FaultUnit() (unit, page uint64) {
	if t.sync {
		return TrackUnit, t.page
	}
	return t.page, t.page
}

// startGuard starts the guard of a tracker just armed. The caller holds
// t.mu.
func (t *Tracker) startGuard() {
	t.stopGuard()
	if t.guardLimit == 0 {
		return
	}
	stop := make(chan struct{})
	t.guardStop = stop
	go t.guard(stop)
}

// stopGuard stops the running guard. The caller holds t.mu.
func (t *Tracker) stopGuard() {
	if t.guardStop != nil {
		close(t.guardStop)
		t.guardStop = nil
	}
}

// guardMin and guardMax bound the time between two checks; in between,
// a check takes at most 1/guardShare of the time.
const (
	guardMin   = 5 * time.Millisecond
	guardMax   = 200 * time.Millisecond
	guardShare = 50
)

func (t *Tracker) guard(stop chan struct{}) {
	wait := guardMin
	timer := time.NewTimer(wait)
	defer timer.Stop()
	for {
		select {
		case <-stop:
			return
		case <-timer.C:
		}
		t0 := time.Now()
		if t.check(stop) {
			return
		}
		wait = min(max(guardShare*time.Since(t0), guardMin), guardMax)
		timer.Reset(wait)
	}
}

// check turns tracking off if more than the limit was written since the
// last Collect, and reports whether it did.
func (t *Tracker) check(stop chan struct{}) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	select {
	case <-stop: // Collect, Disarm or Close came first
		return false
	default:
	}
	armed := t.armed
	if armed == 0 || t.count(0, armed, t.guardLimit) <= t.guardLimit {
		return false
	}
	if t.copyingNow() {
		return false // lifting protection now would lose the capture's copy
	}
	t.armed = 0
	t.tripped = true
	t.guardStop = nil
	if t.protect(0, armed, false) == nil {
		t.restoreHuge(0, armed)
	}
	return true
}

// count returns how many bytes of [start, end) were written, stopping
// once it passes max.
func (t *Tracker) count(start, end, max uint64) uint64 {
	if t.cow != nil && start == 0 {
		return t.cow.countLifted(end)
	}
	var n uint64
	_ = t.scan(start, end, false, max, func(start, end uint64) { n += end - start })
	return n
}

// measureCosts times write faults on 256 protected pages of a scratch
// mapping, and reads of the same pages, on one thread's CPU clock (so
// that other processes' load does not count). Zeros if it cannot.
func measureCosts(fd int) (fault, read time.Duration) {
	const pages = 256
	page := unix.Getpagesize()
	mem, err := unix.Mmap(-1, 0, pages*page, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		return 0, 0
	}
	defer unix.Munmap(mem) // drops the registration too
	_ = unix.Madvise(mem, unix.MADV_NOHUGEPAGE)
	for i := 0; i < len(mem); i += page {
		mem[i] = 1
	}
	base := uint64(uintptr(unsafe.Pointer(&mem[0])))
	reg := uffd.RegisterArg{Start: base, Len: uint64(len(mem)), Mode: uffd.RegisterModeWP}
	if uffd.Ioctl(fd, uffd.IoctlRegister, unsafe.Pointer(&reg)) != nil {
		return 0, 0
	}
	wp := uffd.WriteProtectArg{Start: base, Len: uint64(len(mem)), Mode: uffd.WriteProtectModeWP}
	if uffd.Ioctl(fd, uffd.IoctlWriteProtect, unsafe.Pointer(&wp)) != nil {
		return 0, 0
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	t0 := threadTime()
	for i := 0; i < len(mem); i += page {
		mem[i] = 2
	}
	t1 := threadTime()
	const passes = 16
	var sum uint64
	for range passes {
		for _, w := range unsafe.Slice((*uint64)(unsafe.Pointer(&mem[0])), len(mem)/8) {
			sum += w
		}
	}
	t2 := threadTime()
	if sum == 0 { // keeps the reads
		return 0, 0
	}
	return (t1 - t0) / pages, (t2 - t1) / (pages * passes)
}

func threadTime() time.Duration {
	var ts unix.Timespec
	if unix.ClockGettime(unix.CLOCK_THREAD_CPUTIME_ID, &ts) != nil {
		return 0
	}
	return time.Duration(ts.Nano())
}
