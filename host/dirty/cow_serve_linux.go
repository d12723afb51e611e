//go:build linux && !race

package dirty

import (
	"math/bits"
	"sync/atomic"
	"syscall"
	"unsafe"

	"github.com/librahost/librahost/host/uffd"
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
// Nor may it panic: its indexing is unchecked (cowShared.state, keep,
// need), each index proven in range where it is made, so that it has no
// bounds check to fail, and it divides by no value it has not checked.
//
// The linker checks that the deepest chain of nosplit calls fits in the
// stack a nosplit function may use (792 bytes on amd64), and it must fit
// under go test -fuzz too, which instruments every comparison with a call
// and so grows every frame: the syscall buffers live in cowShared, not in
// the frames, the handler calls syscall.RawSyscall6 itself (not
// RawSyscall, one frame more) and the copy of a block is one function
// (TestCOWFuzzBuild).
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

//go:linkname memmove runtime.memmove
//go:noescape
func memmove(to, from unsafe.Pointer, n uintptr)

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

// cowStep resolves the pending faults, runs the commands given, copies
// one block in the background or sleeps until there is something to do.
// It returns false once told to exit.
//
//go:nosplit
//go:norace
func cowStep(sh *cowShared) bool {
	cowFaults(sh)
	n, _, errno := syscall.RawSyscall6(syscall.SYS_READ, uintptr(sh.ctl), uintptr(unsafe.Pointer(&sh.word)), 8, 0, 0, 0)
	if errno == 0 && n == 8 {
		return cowCommands(sh)
	}
	if sh.hold == 0 {
		if s := cowBusy(sh); s < cowSlots {
			cowNext(sh, s)
			return true
		}
	}
	sh.fds = [2]pollFd{{fd: sh.uffd, events: pollIn}, {fd: sh.ctl, events: pollIn}}
	syscall.RawSyscall6(syscall.SYS_PPOLL, uintptr(unsafe.Pointer(&sh.fds[0])), 2, 0, 0, 0, 0)
	return true
}

// cowFaults resolves the faults queued on the userfaultfd.
//
//go:nosplit
//go:norace
func cowFaults(sh *cowShared) {
	for {
		n, _, errno := syscall.RawSyscall6(syscall.SYS_READ, uintptr(sh.uffd), uintptr(unsafe.Pointer(&sh.msg)), unsafe.Sizeof(sh.msg), 0, 0, 0)
		if errno != 0 || n != unsafe.Sizeof(sh.msg) {
			return
		}
		if sh.msg.Event == uffd.EventPagefault {
			cowFault(sh, sh.msg.Address)
		}
	}
}

// cowCommands runs the commands given and not yet taken, acks them, and
// returns false once told to exit.
//
//go:nosplit
//go:norace
func cowCommands(sh *cowShared) bool {
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
	cowSignal(sh, sh.ack)
	return more
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
		if best == cowSlots || sl.gen < sh.slots[best%cowSlots].gen {
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

// cowSignal adds one to eventfd fd.
//
//go:nosplit
//go:norace
func cowSignal(sh *cowShared, fd int32) {
	syscall.RawSyscall6(syscall.SYS_WRITE, uintptr(fd), uintptr(unsafe.Pointer(&sh.one)), 8, 0, 0, 0)
}

// cowPendingIn reports whether block b is pending in slot s (< cowSlots).
//
//go:nosplit
//go:norace
func cowPendingIn(sh *cowShared, s uint32, b uint64) bool {
	return b < sh.nblocks && atomic.LoadUint32(sh.state(s, b)) == blockPending
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
	b := off / CopyBlock // < nblocks, as off < limit
	lo := b * CopyBlock
	hi := min(lo+CopyBlock, sh.limit)
	cowCopyAll(sh, b)
	if *sh.keep(b) == 0 {
		cowRelease(sh, sh.base+lo, hi-lo)
		return
	}
	// Tracked: lift the protection of the faulting unit only, so that
	// the next capture knows what was written.
	u := off &^ (TrackUnit - 1)
	cowRelease(sh, sh.base+u, min(u+TrackUnit, sh.limit)-u)
}

// cowNext copies the next pending block of slot s (< cowSlots) in the
// background.
//
//go:nosplit
//go:norace
func cowNext(sh *cowShared, s uint32) {
	sl := &sh.slots[s%cowSlots]
	nb := min(sh.nblocks, (sl.size+CopyBlock-1)/CopyBlock)
	for sl.cursor < nb && atomic.LoadUint32(sh.state(s, sl.cursor)) != blockPending {
		sl.cursor++
	}
	if sl.cursor >= nb {
		atomic.StoreUint64(&sl.pending, 0)
		cowSignal(sh, sh.prog)
		return
	}
	b := sl.cursor // < nblocks
	cowCopyAll(sh, b)
	if *sh.keep(b) == 0 {
		lo := b * CopyBlock
		cowRelease(sh, sh.base+lo, min(lo+CopyBlock, sh.limit)-lo)
	}
}

// cowCopyAll copies block b (< nblocks) into the shadow of every slot it
// is pending in, and marks it copied there: the whole block, or the
// chunks of it the capture needs once it said what it needs.
//
//go:nosplit
//go:norace
func cowCopyAll(sh *cowShared, b uint64) {
	for s := uint32(0); s < cowSlots; s++ {
		st := sh.state(s, b)
		if atomic.LoadUint32(st) != blockPending {
			continue
		}
		sl := &sh.slots[s]
		lo := b * CopyBlock
		hi := min(lo+CopyBlock, sl.size)
		started := atomic.LoadUint32(&sl.started) != 0
		if chunk := sl.chunk; started && chunk != 0 {
			// c / chunk, chunk a power of two (Snapshot.start): a
			// division's zero check, which go test -fuzz's
			// instrumentation hides from the compiler, could panic.
			shift := bits.TrailingZeros64(chunk)
			for c := lo; c < hi; c += chunk {
				if i := c >> shift; i < sh.needLen && *sh.need(s, i) != 0 {
					cowMove(sh, s, c, min(c+chunk, hi))
				}
			}
		} else {
			cowMove(sh, s, lo, hi)
		}
		atomic.StoreUint32(st, blockCopied)
		atomic.AddUint64(&sh.copied, 1)
		if atomic.AddUint64(&sl.pending, ^uint64(0)) == 0 {
			sl.cursor = 0
		}
		cowSignal(sh, sh.prog)
	}
}

// cowMove copies [lo, hi) of the memory into slot s's (< cowSlots)
// shadow.
//
//go:nosplit
//go:norace
func cowMove(sh *cowShared, s uint32, lo, hi uint64) {
	if lo < hi {
		memmove(unsafe.Add(sh.slots[s%cowSlots].shadowP, lo), unsafe.Add(sh.baseP, lo), uintptr(hi-lo))
	}
}

// cowRelease lifts the write protection of [addr, addr+n) and wakes the
// threads that wait on it.
//
//go:nosplit
//go:norace
func cowRelease(sh *cowShared, addr, n uint64) {
	sh.wp = uffd.WriteProtectArg{Start: addr, Len: n, Mode: uffd.WriteProtectModeClear}
	if _, _, errno := syscall.RawSyscall6(syscall.SYS_IOCTL, uintptr(sh.uffd), uffd.IoctlWriteProtect, uintptr(unsafe.Pointer(&sh.wp)), 0, 0, 0); errno != 0 {
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
	nb := min(sh.nblocks, (sl.size+CopyBlock-1)/CopyBlock)
	sl.cursor = 0
	atomic.StoreUint32(&sl.started, 1)
	// With no chunk size every block is needed.
	for chunk, b := sl.chunk, uint64(0); chunk != 0 && b < nb; b++ {
		st := sh.state(s, b)
		if atomic.LoadUint32(st) != blockPending {
			continue
		}
		lo := b * CopyBlock
		hi := min(lo+CopyBlock, sl.size)
		needed := false
		for c := lo; c < hi && !needed; c += chunk {
			i := c / chunk
			needed = i >= sh.needLen || *sh.need(s, i) != 0
		}
		if needed {
			continue
		}
		atomic.StoreUint32(st, blockFree)
		if atomic.AddUint64(&sl.pending, ^uint64(0)) == 0 {
			sl.cursor = 0
		}
		if *sh.keep(b) == 0 && !cowPendingIn(sh, 1-s, b) {
			cowRelease(sh, sh.base+lo, min(lo+CopyBlock, sh.limit)-lo)
		}
	}
	cowSignal(sh, sh.prog)
}
