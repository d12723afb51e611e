//go:build linux && !race

package dirty

import (
	"math/bits"
	"sync/atomic"
	"syscall"
	"unsafe"

	"github.com/librahost/librahost/host/uffd"
	"golang.org/x/sys/unix"
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
// loads and stores on memory outside the Go heap (cowShared is mmap'd), or
// pinned in it, as C code may (the guest's preemption counter:
// ZeroWhenFull).
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
// It never waits for Go code either: a fault on a block not yet read is
// resolved by copying the block itself, into the pool or, with the pool
// full, beyond it (a fault that waited for the reader, Go code, could
// wait for ever: the runtime's stop-the-world waits for the faulting
// thread's P while the reader is stopped; and short of that, the
// collector's stack scan spins on a thread waiting in a fault). Go code
// only ever waits for the handler (command acks, progress), never the
// other way round: the guest waits for a full pool to drain in Go, at its
// own preemption calls (Tracker.Throttle). Hence no deadlock: a fault
// needs the handler thread alone, and that thread needs nothing the
// runtime could withhold.
//
// Two snapshots may be under way at once, one per slot (cowSlots): a block
// pending in both holds the same bytes for both (it was not written since
// the older froze), so a fault copies it for both, and its protection is
// lifted only once no slot needs it any more.
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

// cowStep gives back the blocks the readers have read, resolves the
// faults, runs the commands given, or sleeps until there is something to
// do. It returns false once told to exit.
//
//go:nosplit
//go:norace
func cowStep(sh *cowShared) bool {
	cowReap(sh)
	cowFaults(sh)
	n, _, errno := syscall.RawSyscall6(syscall.SYS_READ, uintptr(sh.ctl), uintptr(unsafe.Pointer(&sh.word)), 8, 0, 0, 0)
	if errno == 0 && n == 8 {
		return cowCommands(sh)
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
			atomic.AddUint64(&sh.faults, 1)
			// The thread that faulted stands until the fault is
			// resolved: what a capture costs the guest beyond its
			// pause (PoolStats.Faulted).
			cowClock(&sh.t0)
			cowFault(sh, sh.msg.Address)
			cowClock(&sh.t1)
			if d := (sh.t1.Sec-sh.t0.Sec)*1e9 + sh.t1.Nsec - sh.t0.Nsec; d > 0 && sh.msg.Address-sh.base < sh.limit {
				atomic.AddUint64(&sh.faultNs, uint64(d))
			}
		}
	}
}

// cowClock reads the monotonic clock into ts, by the raw syscall (the
// vDSO's entry needs the runtime).
//
//go:nosplit
//go:norace
func cowClock(ts *syscall.Timespec) {
	syscall.RawSyscall6(syscall.SYS_CLOCK_GETTIME, unix.CLOCK_MONOTONIC, uintptr(unsafe.Pointer(ts)), 0, 0, 0, 0)
}

// cowWant names block b to the readers: it was copied, and reading it
// gives its shadow block back.
//
//go:nosplit
//go:norace
func cowWant(sh *cowShared, b uint64) {
	w := atomic.LoadUint32(&sh.wseq)
	atomic.StoreUint32(&sh.wants[w%wantRing], uint32(b))
	atomic.StoreUint32(&sh.wseq, w+1)
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

// cowFault resolves a write fault at addr: it copies the block for the
// snapshots that have it pending, then lifts the protection.
//
//go:nosplit
//go:norace
func cowFault(sh *cowShared, addr uint64) {
	if addr < sh.base || addr >= sh.base+sh.limit { // a scratch mapping (Costs)
		cowRelease(sh, addr&^(sh.page-1), sh.page)
		return
	}
	off := addr - sh.base
	b := off / CopyBlock // < nblocks, as off < limit
	lo := b * CopyBlock
	hi := min(lo+CopyBlock, sh.limit)
	if cowCopyAll(sh, b) {
		cowWant(sh, b)
		if p := atomic.LoadPointer(&sh.full); p != nil && atomic.LoadUint64(&sh.inuse) >= sh.poolMax {
			// The guest, stopped in this fault, calls Throttle at its
			// next loop head (ZeroWhenFull).
			atomic.StoreUint32((*uint32)(p), 0)
		}
	}
	if *sh.keep(b) == 0 {
		cowRelease(sh, sh.base+lo, hi-lo)
		return
	}
	// Tracked: lift the protection of the faulting unit only, so that
	// the next capture knows what was written.
	u := off &^ (TrackUnit - 1)
	cowRelease(sh, sh.base+u, min(u+TrackUnit, sh.limit)-u)
}

// cowCopyAll copies block b (< nblocks) into a shadow block for every
// slot it is pending in, and marks it copied there: the whole block, or
// the chunks of it the capture needs once it said what it needs. A slot
// whose reader read the block meanwhile keeps it read, and the shadow
// block goes back. It reports whether it copied any.
//
//go:nosplit
//go:norace
func cowCopyAll(sh *cowShared, b uint64) bool {
	any := false
	for s := uint32(0); s < cowSlots; s++ {
		st := sh.state(s, b)
		if atomic.LoadUint32(st) != blockPending {
			continue
		}
		p := cowAlloc(sh)
		if p >= sh.poolLen {
			atomic.AddUint64(&sh.errs, 1) // cannot be: the pool has room for every block of every slot
			continue
		}
		sl := &sh.slots[s]
		lo := b * CopyBlock
		hi := min(lo+CopyBlock, sl.size)
		dst := unsafe.Add(sh.poolP, p*CopyBlock)
		if chunk := sl.chunk; atomic.LoadUint32(&sl.started) != 0 && chunk != 0 {
			// c / chunk, chunk a power of two (Snapshot.start): a
			// division's zero check, which go test -fuzz's
			// instrumentation hides from the compiler, could panic.
			shift := bits.TrailingZeros64(chunk)
			for c := lo; c < hi; c += chunk {
				if i := c >> shift; i < sh.needLen && *sh.need(s, i) != 0 {
					cowMove(sh, dst, c-lo, c, min(c+chunk, hi))
				}
			}
		} else {
			cowMove(sh, dst, 0, lo, hi)
		}
		atomic.StoreUint32(sh.where(s, b), uint32(p))
		if !atomic.CompareAndSwapUint32(st, blockPending, blockCopied) {
			cowFree(sh, p) // read meanwhile
			continue
		}
		atomic.AddUint64(&sh.copied, 1)
		any = true
	}
	return any
}

// cowAlloc takes the lowest free shadow block (poolLen if none) and
// counts it in use.
//
//go:nosplit
//go:norace
func cowAlloc(sh *cowShared) uint64 {
	for w := uint64(0); w < sh.freeWords; w++ {
		word := sh.freeWord(w)
		if *word == 0 {
			continue
		}
		i := uint64(bits.TrailingZeros64(*word))
		p := w*64 + i
		if p >= sh.poolLen {
			break
		}
		*word &^= 1 << i
		n := atomic.AddUint64(&sh.inuse, 1)
		if n > atomic.LoadUint64(&sh.peak) {
			atomic.StoreUint64(&sh.peak, n)
		}
		if p >= sh.poolMax {
			atomic.AddUint64(&sh.overflow, 1)
		}
		return p
	}
	return sh.poolLen
}

// cowFree gives shadow block p (< poolLen) back to the pool, and its
// memory to the kernel if it is beyond the pool.
//
//go:nosplit
//go:norace
func cowFree(sh *cowShared, p uint64) {
	if p >= sh.poolLen {
		return
	}
	if p >= sh.poolMax {
		syscall.RawSyscall6(syscall.SYS_MADVISE, uintptr(sh.poolP)+uintptr(p*CopyBlock), CopyBlock, madvDontneed, 0, 0, 0)
	}
	*sh.freeWord(p / 64) |= 1 << (p % 64)
	atomic.AddUint64(&sh.inuse, ^uint64(0))
}

const madvDontneed = 4

// cowMove copies [lo, hi) of the memory to dst+at.
//
//go:nosplit
//go:norace
func cowMove(sh *cowShared, dst unsafe.Pointer, at, lo, hi uint64) {
	if lo < hi {
		memmove(unsafe.Add(dst, at), unsafe.Add(sh.baseP, lo), uintptr(hi-lo))
	}
}

// cowRelease lifts the write protection of [addr, addr+n) and wakes the
// threads that wait on it.
//
//go:nosplit
//go:norace
func cowRelease(sh *cowShared, addr, n uint64) {
	if addr >= sh.base && addr-sh.base < sh.limit {
		cowLifted(sh, addr-sh.base, n)
	}
	sh.wp = uffd.WriteProtectArg{Start: addr, Len: n, Mode: uffd.WriteProtectModeClear}
	if _, _, errno := syscall.RawSyscall6(syscall.SYS_IOCTL, uintptr(sh.uffd), uffd.IoctlWriteProtect, uintptr(unsafe.Pointer(&sh.wp)), 0, 0, 0); errno != 0 {
		atomic.AddUint64(&sh.errs, 1)
	}
}

// cowLifted sets the lifted bits (cow.markLifted) of the units that
// [off, off+n) of the mapping touches, before their protection is lifted:
// the write that faulted goes on only once it is, so by the time the
// guest is paused for a Collect the bit of every unit it wrote is set. (A
// Collect runs only while the guest is paused and reaps are held: no lift
// is under way then, and none can come between its clearing a bit and
// its protecting the unit again.)
//
//go:nosplit
//go:norace
func cowLifted(sh *cowShared, off, n uint64) {
	for u := off / TrackUnit; u*TrackUnit < off+n; u++ {
		if w := u / 64; w < sh.liftWords {
			atomic.OrUint64(sh.liftWord(w), 1<<(u%64))
		}
	}
}

// cowReap ends the blocks the readers have read since the last call
// (their protection lifted, their shadow blocks back to the pool, which
// wakes a guest waiting for room: Throttle). It leaves them while the
// handler is held: a reap lifts protection.
//
//go:nosplit
//go:norace
func cowReap(sh *cowShared) {
	if sh.hold != 0 {
		return
	}
	seen := atomic.LoadUint64(&sh.consumed)
	if seen == sh.reaped {
		return
	}
	sh.reaped = seen
	freed := false
	for s := uint32(0); s < cowSlots; s++ {
		sl := &sh.slots[s]
		nb := min(sh.nblocks, (sl.size+CopyBlock-1)/CopyBlock)
		ended := false
		for b := uint64(0); b < nb; b++ {
			st := sh.state(s, b)
			switch atomic.LoadUint32(st) {
			case blockReadMem:
				atomic.StoreUint32(st, blockFree)
				if *sh.keep(b) == 0 && !cowPendingIn(sh, 1-s, b) {
					lo := b * CopyBlock
					cowRelease(sh, sh.base+lo, min(lo+CopyBlock, sh.limit)-lo)
				}
			case blockReadCopy:
				atomic.StoreUint32(st, blockFree)
				cowFree(sh, uint64(atomic.LoadUint32(sh.where(s, b))))
				freed = true
			default:
				continue
			}
			if atomic.AddUint64(&sl.pending, ^uint64(0)) == 0 {
				ended = true
			}
		}
		if ended {
			cowSignal(sh, sh.prog)
		}
	}
	if freed {
		cowSignal(sh, sh.prog)
	}
}
