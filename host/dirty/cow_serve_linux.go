//go:build linux && !race

package dirty

import (
	"github.com/librahost/librahost/host/uffd"
	"sync/atomic"
	"syscall"
	"unsafe"
)

// The fault handler of a copy-on-write capture. It must resolve a write
// fault whatever the Go runtime is doing: the goroutine that faulted is
// stuck in a memory access inside compiled guest code (or in Go code
// writing guest memory) and holds its P, so a stop-the-world (the garbage
// collector's, for one) waits for that fault to be resolved. Were the
// handler an ordinary goroutine, the stop-the-world could stop it first,
// and the two would wait for each other for ever.
//
// So the handler runs as a cgo call's C code does: its goroutine, locked
// to its own OS thread, enters the runtime's syscall state
// (runtime.entersyscall, the entry of every blocking syscall) and stays
// there for as long as it serves. A goroutine in a syscall holds no P;
// the scheduler and the collector do not wait for it, never stop it, and
// do not move or shrink its stack. Until it leaves (exitsyscall) it may
// only run code that needs nothing of the runtime: every function below
// is nosplit (the stack guard is poisoned in syscall state, a stack check
// would throw), allocates nothing, takes no lock, uses no channel, and
// calls nothing but raw syscalls, memmove (nosplit assembly) and atomic
// loads and stores on memory outside the Go heap (cowShared is mmap'd).
// It never waits for Go code either: a fault on a block not yet copied is
// resolved by copying the block itself, and Go code only ever waits for
// the handler (command acks, copy progress), never the other way round.
// Hence no deadlock: a fault needs the handler thread alone, and that
// thread needs nothing the runtime could withhold.
//
// Two snapshots may be under way at once, one per slot (cowSlots): a block
// pending in both holds the same bytes for both (it was not written since
// the older froze), so whoever copies it copies it into both shadows, and
// its protection is lifted only once no slot needs it any more.
//
// The race detector's atomics need a P, so this file is built without
// -race; under -race NewCOW reports ErrUnsupported (cow_race.go).

//go:linkname entersyscall runtime.entersyscall
func entersyscall()

//go:linkname exitsyscall runtime.exitsyscall
func exitsyscall()

// cowServe is the handler thread's body.
//
//go:nosplit
//go:norace
func cowServe(sh *cowShared) {
	entersyscall()
	for cowStep(sh) {
	}
	exitsyscall()
}

// cowStep resolves the pending faults, runs a command, copies one block
// in the background or sleeps until there is something to do. It returns
// false once told to exit.
//
//go:nosplit
//go:norace
func cowStep(sh *cowShared) bool {
	var msg uffd.Msg
	for {
		n, _, errno := syscall.RawSyscall(syscall.SYS_READ, uintptr(sh.uffd), uintptr(unsafe.Pointer(&msg)), unsafe.Sizeof(msg))
		if errno != 0 || n != unsafe.Sizeof(msg) {
			break
		}
		if msg.Event == uffd.EventPagefault {
			cowFault(sh, msg.Address)
		}
	}
	var v uint64
	n, _, errno := syscall.RawSyscall(syscall.SYS_READ, uintptr(sh.ctl), uintptr(unsafe.Pointer(&v)), 8)
	if errno == 0 && n == 8 {
		more := true
		for done := atomic.LoadUint32(&sh.acked); more && done != atomic.LoadUint32(&sh.seq); done++ {
			c := &sh.cmds[done%cmdRing]
			switch atomic.LoadUint32(&c.cmd) {
			case cmdStart:
				cowStart(sh, atomic.LoadUint32(&c.arg))
			case cmdHold:
				sh.hold++
			case cmdResume:
				sh.hold--
			case cmdExit:
				more = false
			}
			atomic.StoreUint32(&sh.acked, done+1)
		}
		cowSignal(sh.ack)
		return more
	}
	if sh.hold == 0 {
		if s := cowBusy(sh); s < cowSlots {
			cowNext(sh, s)
			return true
		}
	}
	fds := [2]pollFd{{fd: sh.uffd, events: pollIn}, {fd: sh.ctl, events: pollIn}}
	syscall.RawSyscall6(syscall.SYS_PPOLL, uintptr(unsafe.Pointer(&fds[0])), 2, 0, 0, 0, 0)
	return true
}

// cowBusy returns the oldest slot whose background copy has started and
// is not done, or cowSlots if none.
//
//go:nosplit
//go:norace
func cowBusy(sh *cowShared) uint32 {
	best := uint32(cowSlots)
	for s := uint32(0); s < cowSlots; s++ {
		sl := &sh.slots[s]
		if atomic.LoadUint32(&sl.started) == 0 || atomic.LoadUint64(&sl.pending) == 0 {
			continue
		}
		if best == cowSlots || sl.gen < sh.slots[best].gen {
			best = s
		}
	}
	return best
}

type pollFd struct {
	fd      int32
	events  int16
	revents int16
}

const pollIn = 1

//go:nosplit
//go:norace
func cowSignal(fd int32) {
	one := uint64(1)
	syscall.RawSyscall(syscall.SYS_WRITE, uintptr(fd), uintptr(unsafe.Pointer(&one)), 8)
}

// cowPendingIn reports whether block b is pending in slot s.
//
//go:nosplit
//go:norace
func cowPendingIn(sh *cowShared, s uint32, b uint64) bool {
	st := sh.states(s)
	return b < uint64(len(st)) && atomic.LoadUint32(&st[b]) == blockPending
}

// cowCopyAll copies block b into every slot it is pending in, and reports
// whether it was pending in any.
//
//go:nosplit
//go:norace
func cowCopyAll(sh *cowShared, b uint64) bool {
	any := false
	for s := uint32(0); s < cowSlots; s++ {
		if cowPendingIn(sh, s, b) {
			cowCopy(sh, s, b)
			any = true
		}
	}
	return any
}

// cowFault resolves a write fault at addr.
//
//go:nosplit
//go:norace
func cowFault(sh *cowShared, addr uint64) {
	atomic.AddUint64(&sh.faults, 1)
	if addr < sh.base || addr >= sh.base+sh.limit { // a scratch mapping (Costs)
		cowRelease(sh, addr&^(sh.page-1), sh.page)
		return
	}
	off := addr - sh.base
	b := off / CopyBlock
	lo := b * CopyBlock
	hi := min(lo+CopyBlock, sh.limit)
	cowCopyAll(sh, b)
	if sh.keeps()[b] == 0 {
		cowRelease(sh, sh.base+lo, hi-lo)
		return
	}
	// Tracked: lift the protection of the faulting unit only, so that
	// the next capture knows what was written.
	u := off &^ (TrackUnit - 1)
	cowRelease(sh, sh.base+u, min(u+TrackUnit, sh.limit)-u)
}

// cowNext copies the next pending block of slot s in the background.
//
//go:nosplit
//go:norace
func cowNext(sh *cowShared, s uint32) {
	sl := &sh.slots[s]
	st := sh.states(s)
	nb := min(uint64(len(st)), (sl.size+CopyBlock-1)/CopyBlock)
	for sl.cursor < nb && atomic.LoadUint32(&st[sl.cursor]) != blockPending {
		sl.cursor++
	}
	if sl.cursor >= nb {
		atomic.StoreUint64(&sl.pending, 0)
		cowSignal(sh.prog)
		return
	}
	b := sl.cursor
	cowCopyAll(sh, b)
	if sh.keeps()[b] == 0 {
		lo := b * CopyBlock
		cowRelease(sh, sh.base+lo, min(lo+CopyBlock, sh.limit)-lo)
	}
}

// cowCopy copies the needed chunks of block b, pending in slot s, into
// the slot's shadow (every chunk before the capture said what it needs)
// and marks it copied.
//
//go:nosplit
//go:norace
func cowCopy(sh *cowShared, s uint32, b uint64) {
	sl := &sh.slots[s]
	lo := b * CopyBlock
	hi := min(lo+CopyBlock, sl.size)
	if atomic.LoadUint32(&sl.started) == 0 || sl.chunk == 0 {
		cowMove(sh, s, lo, hi)
	} else {
		need := sh.needs(s)
		for c := lo; c < hi; c += sl.chunk {
			if i := c / sl.chunk; i < uint64(len(need)) && need[i] != 0 {
				cowMove(sh, s, c, min(c+sl.chunk, hi))
			}
		}
	}
	atomic.StoreUint32(&sh.states(s)[b], blockCopied)
	atomic.AddUint64(&sh.copied, 1)
	if atomic.AddUint64(&sl.pending, ^uint64(0)) == 0 {
		sl.cursor = 0
	}
	cowSignal(sh.prog)
}

//go:nosplit
//go:norace
func cowMove(sh *cowShared, s uint32, lo, hi uint64) {
	if lo >= hi {
		return
	}
	dst := unsafe.Slice((*byte)(unsafe.Add(sh.slots[s].shadowP, lo)), hi-lo)
	src := unsafe.Slice((*byte)(unsafe.Add(sh.baseP, lo)), hi-lo)
	copy(dst, src)
}

// cowRelease lifts the write protection of [addr, addr+n) and wakes the
// threads that wait on it.
//
//go:nosplit
//go:norace
func cowRelease(sh *cowShared, addr, n uint64) {
	a := uffd.WriteProtectArg{Start: addr, Len: n, Mode: uffd.WriteProtectModeClear}
	if _, _, errno := syscall.RawSyscall(syscall.SYS_IOCTL, uintptr(sh.uffd), uffd.IoctlWriteProtect, uintptr(unsafe.Pointer(&a))); errno != 0 {
		atomic.AddUint64(&sh.errs, 1)
	}
}

// cowStart takes slot s's needs: a pending block none of whose chunks is
// needed is done with at once, and the background copy starts.
//
//go:nosplit
//go:norace
func cowStart(sh *cowShared, s uint32) {
	if s >= cowSlots {
		return
	}
	sl := &sh.slots[s]
	st := sh.states(s)
	need := sh.needs(s)
	nb := min(uint64(len(st)), (sl.size+CopyBlock-1)/CopyBlock)
	sl.cursor = 0
	atomic.StoreUint32(&sl.started, 1)
	for b := range nb {
		if atomic.LoadUint32(&st[b]) != blockPending {
			continue
		}
		lo := b * CopyBlock
		hi := min(lo+CopyBlock, sl.size)
		needed := sl.chunk == 0
		for c := lo; c < hi && !needed; c += sl.chunk {
			i := c / sl.chunk
			needed = i >= uint64(len(need)) || need[i] != 0
		}
		if needed {
			continue
		}
		atomic.StoreUint32(&st[b], blockFree)
		if atomic.AddUint64(&sl.pending, ^uint64(0)) == 0 {
			sl.cursor = 0
		}
		if sh.keeps()[b] == 0 && !cowPendingIn(sh, 1-s, b) {
			cowRelease(sh, sh.base+lo, min(lo+CopyBlock, sh.limit)-lo)
		}
	}
	cowSignal(sh.prog)
}
