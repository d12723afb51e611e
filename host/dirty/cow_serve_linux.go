//go:build linux && !race

package dirty

import (
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
// The race detector's atomics need a P, so this file is built without
// -race; under -race NewCOW reports ErrUnsupported (cow_race.go).

//go:linkname entersyscall runtime.entersyscall
func entersyscall()

//go:linkname exitsyscall runtime.exitsyscall
func exitsyscall()

// uffdMsg is struct uffd_msg for a page fault.
type uffdMsg struct {
	event    uint8
	_        [7]uint8
	flags    uint64
	address  uint64
	reserved uint64
}

const (
	uffdEventPagefault      = 0x12
	uffdioWriteProtectClear = 0 // mode: clear protection and wake
)

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
	var msg uffdMsg
	for {
		n, _, errno := syscall.RawSyscall(syscall.SYS_READ, uintptr(sh.uffd), uintptr(unsafe.Pointer(&msg)), unsafe.Sizeof(msg))
		if errno != 0 || n != unsafe.Sizeof(msg) {
			break
		}
		if msg.event == uffdEventPagefault {
			cowFault(sh, msg.address)
		}
	}
	var v uint64
	n, _, errno := syscall.RawSyscall(syscall.SYS_READ, uintptr(sh.ctl), uintptr(unsafe.Pointer(&v)), 8)
	if errno == 0 && n == 8 {
		cmd := atomic.LoadUint32(&sh.cmd)
		if cmd == cmdStart {
			cowStart(sh)
		}
		atomic.StoreUint32(&sh.acked, atomic.LoadUint32(&sh.seq))
		cowSignal(sh.ack)
		if cmd == cmdExit {
			return false
		}
		return true
	}
	if atomic.LoadUint32(&sh.started) != 0 && atomic.LoadUint64(&sh.pending) > 0 {
		cowNext(sh)
		return true
	}
	fds := [2]pollFd{{fd: sh.uffd, events: pollIn}, {fd: sh.ctl, events: pollIn}}
	syscall.RawSyscall6(syscall.SYS_PPOLL, uintptr(unsafe.Pointer(&fds[0])), 2, 0, 0, 0, 0)
	return true
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
	st := sh.states()
	if b < uint64(len(st)) && atomic.LoadUint32(&st[b]) == blockPending {
		cowCopy(sh, b)
		if sh.keeps()[b] == 0 {
			cowRelease(sh, sh.base+lo, hi-lo)
			return
		}
	} else if sh.keeps()[b] == 0 {
		cowRelease(sh, sh.base+lo, hi-lo)
		return
	}
	// Tracked: lift the protection of the faulting unit only, so that
	// the next capture knows what was written.
	u := off &^ (TrackUnit - 1)
	cowRelease(sh, sh.base+u, min(u+TrackUnit, sh.limit)-u)
}

// cowNext copies the next pending block in the background.
//
//go:nosplit
//go:norace
func cowNext(sh *cowShared) {
	st := sh.states()
	nb := min(uint64(len(st)), (sh.size+CopyBlock-1)/CopyBlock)
	for sh.cursor < nb && atomic.LoadUint32(&st[sh.cursor]) != blockPending {
		sh.cursor++
	}
	if sh.cursor >= nb {
		atomic.StoreUint64(&sh.pending, 0)
		cowSignal(sh.prog)
		return
	}
	b := sh.cursor
	cowCopy(sh, b)
	if sh.keeps()[b] == 0 {
		lo := b * CopyBlock
		cowRelease(sh, sh.base+lo, min(lo+CopyBlock, sh.limit)-lo)
	}
}

// cowCopy copies the needed chunks of pending block b into the shadow
// (every chunk before the capture said what it needs) and marks it
// copied.
//
//go:nosplit
//go:norace
func cowCopy(sh *cowShared, b uint64) {
	lo := b * CopyBlock
	hi := min(lo+CopyBlock, sh.size)
	if atomic.LoadUint32(&sh.started) == 0 || sh.chunk == 0 {
		cowMove(sh, lo, hi)
	} else {
		need := sh.needs()
		for c := lo; c < hi; c += sh.chunk {
			if i := c / sh.chunk; i < uint64(len(need)) && need[i] != 0 {
				cowMove(sh, c, min(c+sh.chunk, hi))
			}
		}
	}
	atomic.StoreUint32(&sh.states()[b], blockCopied)
	atomic.AddUint64(&sh.copied, 1)
	if atomic.AddUint64(&sh.pending, ^uint64(0)) == 0 {
		sh.cursor = 0
	}
	cowSignal(sh.prog)
}

//go:nosplit
//go:norace
func cowMove(sh *cowShared, lo, hi uint64) {
	if lo >= hi {
		return
	}
	dst := unsafe.Slice((*byte)(unsafe.Add(sh.shadowP, lo)), hi-lo)
	src := unsafe.Slice((*byte)(unsafe.Add(sh.baseP, lo)), hi-lo)
	copy(dst, src)
}

// cowRelease lifts the write protection of [addr, addr+n) and wakes the
// threads that wait on it.
//
//go:nosplit
//go:norace
func cowRelease(sh *cowShared, addr, n uint64) {
	a := uffdioWriteProtectArg{start: addr, len: n, mode: uffdioWriteProtectClear}
	if _, _, errno := syscall.RawSyscall(syscall.SYS_IOCTL, uintptr(sh.uffd), uffdioWriteProtect, uintptr(unsafe.Pointer(&a))); errno != 0 {
		atomic.AddUint64(&sh.errs, 1)
	}
}

// cowStart takes the capture's needs: a pending block none of whose
// chunks is needed is done with at once, and the background copy starts.
//
//go:nosplit
//go:norace
func cowStart(sh *cowShared) {
	st := sh.states()
	need := sh.needs()
	nb := min(uint64(len(st)), (sh.size+CopyBlock-1)/CopyBlock)
	sh.cursor = 0
	atomic.StoreUint32(&sh.started, 1)
	for b := range nb {
		if atomic.LoadUint32(&st[b]) != blockPending {
			continue
		}
		lo := b * CopyBlock
		hi := min(lo+CopyBlock, sh.size)
		needed := sh.chunk == 0
		for c := lo; c < hi && !needed; c += sh.chunk {
			i := c / sh.chunk
			needed = i >= uint64(len(need)) || need[i] != 0
		}
		if needed {
			continue
		}
		atomic.StoreUint32(&st[b], blockFree)
		if atomic.AddUint64(&sh.pending, ^uint64(0)) == 0 {
			sh.cursor = 0
		}
		if sh.keeps()[b] == 0 {
			cowRelease(sh, sh.base+lo, min(lo+CopyBlock, sh.limit)-lo)
		}
	}
	cowSignal(sh.prog)
}
