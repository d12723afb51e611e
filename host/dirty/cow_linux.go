//go:build linux && !race

package dirty

import (
	"fmt"
	"math/bits"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"github.com/librahost/librahost/host/uffd"
	"golang.org/x/sys/unix"
)

// Block states, in each slot's states array (cow.go).
const (
	blockFree     = 0 // nothing to copy or read: a fault just lifts the protection
	blockPending  = 1 // in guest memory, protected, not read yet
	blockCopied   = 2 // in a shadow block, not read yet
	blockReadMem  = 3 // read from guest memory, for the handler to reap
	blockReadCopy = 4 // read from its shadow block, for the handler to reap
)

// Commands to the handler.
const (
	cmdNone   = iota
	cmdHold   // reap nothing until cmdResume
	cmdResume // ends a cmdHold
	cmdExit
)

// cmdRing is how many commands may wait for the handler: Go code gives
// a command without waiting for the one before to be taken, unless the
// ring is full.
const cmdRing = 16

// wantRing is how many of the blocks it copied the handler names to the
// readers before the oldest is overwritten.
const wantRing = 64

// cowCmd is a command to the handler: cmd on slot arg.
type cowCmd struct{ cmd, arg uint32 }

// cowSlots is how many snapshots may be under way at once: a capture may
// freeze while the one before is still being read.
const cowSlots = 2

// cowSlot is one snapshot's share of cowShared: its block states, needs,
// shadow blocks and needed chunks left to read.
type cowSlot struct {
	stateOff, needOff uint64
	whereOff, leftOff uint64
	started           uint32 // the capture said what it needs
	_                 uint32
	size              uint64 // the capture's memory size
	chunk             uint64 // need granularity
	pending           uint64 // blocks not yet reaped
}

// cowShared is the state the handler thread and Go code share. It lives in
// an mmap'd region, outside the Go heap, followed by the arrays: per slot
// one state, one shadow block index and one count of needed units left
// (uint32 each) per block and one need flag (byte) per 4 KiB of the
// mapping; one keep flag (byte) per block; the pool's free bitmap.
type cowShared struct {
	uffd, ctl, ack, prog int32 // eventfds: commands and readers' wakes, acks, progress
	base, limit          uint64
	baseP                unsafe.Pointer // mmap'd memory, not the Go heap's
	page                 uint64
	nblocks              uint64
	keepOff, needLen     uint64

	poolP              unsafe.Pointer // the shadow blocks, mmap'd
	full               unsafe.Pointer // *uint32 zeroed when a copy fills the pool (ZeroWhenFull)
	poolMax, poolLen   uint64         // the pool's blocks; with overflow room
	freeOff, freeWords uint64         // the free bitmap (1: free), handler-owned
	liftOff, liftWords uint64         // the lifted bitmap: see cowLifted
	inuse, peak        uint64
	overflow           uint64
	consumed           uint64 // blocks the readers have read (readers add)
	reaped             uint64 // handler-owned: consumed as of the last reap

	seq, acked uint32          // commands given, and taken by the handler
	cmds       [cmdRing]cowCmd // the commands not yet taken, by seq
	hold       uint32          // handler-owned: cmdHolds not yet resumed
	wseq       uint32          // blocks named to the readers
	wants      [wantRing]uint32
	slots      [cowSlots]cowSlot

	faults, copied, errs uint64 // counters
	faultNs              uint64 // the handler's time on faults in the mapping (PoolStats.Faulted)

	// The handler's syscall buffers, kept out of its nosplit frames.
	msg  uffd.Msg             // a fault
	t0   syscall.Timespec     // when the handler took it
	t1   syscall.Timespec     // when it resolved it
	wp   uffd.WriteProtectArg // a protection lifted
	fds  [2]pollFd            // what it sleeps on
	word uint64               // a command eventfd's count
	one  uint64               // 1, what it adds to an eventfd
}

//go:nosplit
func (sh *cowShared) at(off uint64) unsafe.Pointer {
	return unsafe.Add(unsafe.Pointer(sh), off)
}

// state, where, left, keep, need, freeWord and liftWord are the
// handler's unchecked indexing (it may not call the runtime's bounds
// panics): the caller proves s < cowSlots, b < nblocks, i < needLen,
// w < freeWords (liftWords).
//
//go:nosplit
func (sh *cowShared) state(s uint32, b uint64) *uint32 {
	return (*uint32)(sh.at(sh.slots[s%cowSlots].stateOff + 4*b))
}

//go:nosplit
func (sh *cowShared) where(s uint32, b uint64) *uint32 {
	return (*uint32)(sh.at(sh.slots[s%cowSlots].whereOff + 4*b))
}

//go:nosplit
func (sh *cowShared) left(s uint32, b uint64) *uint32 {
	return (*uint32)(sh.at(sh.slots[s%cowSlots].leftOff + 4*b))
}

//go:nosplit
func (sh *cowShared) keep(b uint64) *byte { return (*byte)(sh.at(sh.keepOff + b)) }

//go:nosplit
func (sh *cowShared) need(s uint32, i uint64) *byte {
	return (*byte)(sh.at(sh.slots[s%cowSlots].needOff + i))
}

//go:nosplit
func (sh *cowShared) freeWord(w uint64) *uint64 { return (*uint64)(sh.at(sh.freeOff + 8*w)) }

//go:nosplit
func (sh *cowShared) liftWord(w uint64) *uint64 { return (*uint64)(sh.at(sh.liftOff + 8*w)) }

func (sh *cowShared) lifts() []uint64 {
	return unsafe.Slice((*uint64)(sh.at(sh.liftOff)), sh.liftWords)
}

func (sh *cowShared) states(s uint32) []uint32 {
	return unsafe.Slice((*uint32)(sh.at(sh.slots[s].stateOff)), sh.nblocks)
}

func (sh *cowShared) lefts(s uint32) []uint32 {
	return unsafe.Slice((*uint32)(sh.at(sh.slots[s].leftOff)), sh.nblocks)
}

func (sh *cowShared) keeps() []byte { return unsafe.Slice((*byte)(sh.at(sh.keepOff)), sh.nblocks) }

func (sh *cowShared) needs(s uint32) []byte {
	return unsafe.Slice((*byte)(sh.at(sh.slots[s].needOff)), sh.needLen)
}

// cow is a tracker's copy-on-write machinery.
type cow struct {
	region []byte // cowShared and its arrays
	sh     *cowShared
	mem    []byte   // the guest's mapping
	pool   []byte   // the shadow blocks
	prog   *os.File // read end of sh.prog, through the poller
	ackF   *os.File
	ctlFd  int
	exited chan struct{}

	cmdMu sync.Mutex // one command at a time

	mu    sync.Mutex
	cond  *sync.Cond // broadcast on progress
	snaps [cowSlots]*Snapshot

	holdMu sync.Mutex
	holds  int // Hold calls not yet resumed

	waited    atomic.Int64 // see Tracker.Waited
	throttled atomic.Int64 // see PoolStats.Throttled
}

// poolBlocks is PoolBlocks; a variable for the tests.
var poolBlocks uint64 = PoolBlocks

// startCOW sets up the shared state and the pool (of poolMax blocks, 0:
// poolBlocks) of a mapping and starts the handler thread on uffd.
func startCOW(fd int, mem unsafe.Pointer, limit, page, poolMax uint64) (*cow, error) {
	if poolMax == 0 {
		poolMax = poolBlocks
	}
	base := uint64(uintptr(mem))
	nblocks := (limit + CopyBlock - 1) / CopyBlock
	needLen := (limit + minNeedUnit - 1) / minNeedUnit
	// Room for every block of every slot beyond the pool: a copy always
	// has a place; only what is used is memory.
	poolLen := poolMax + cowSlots*nblocks
	freeWords := (poolLen + 63) / 64
	off := (uint64(unsafe.Sizeof(cowShared{})) + 7) &^ 7
	freeOff := off
	off += 8 * freeWords
	liftWords := (limit/TrackUnit + 1 + 63) / 64
	liftOff := off
	off += 8 * liftWords
	var stateOffs, whereOffs, leftOffs, needOffs [cowSlots]uint64
	for s := range cowSlots {
		stateOffs[s] = off
		whereOffs[s] = off + 4*nblocks
		leftOffs[s] = off + 8*nblocks
		off += 12 * nblocks
	}
	keepOff := off
	off += nblocks
	for s := range cowSlots {
		needOffs[s] = off
		off += needLen
	}
	total := (off + page - 1) &^ (page - 1)
	region, err := unix.Mmap(-1, 0, int(total), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		return nil, err
	}
	c := &cow{region: region, exited: make(chan struct{}), ctlFd: -1, mem: unsafe.Slice((*byte)(mem), limit)}
	c.cond = sync.NewCond(&c.mu)
	pool, err := unix.Mmap(-1, 0, int(poolLen*CopyBlock), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS|unix.MAP_NORESERVE)
	if err != nil {
		c.unmap()
		return nil, err
	}
	_ = unix.Madvise(pool, unix.MADV_HUGEPAGE)
	c.pool = pool
	sh := (*cowShared)(unsafe.Pointer(&region[0]))
	c.sh = sh
	*sh = cowShared{uffd: int32(fd), base: base, limit: limit, page: page, nblocks: nblocks,
		keepOff: keepOff, needLen: needLen, baseP: mem, ctl: -1, ack: -1, prog: -1, one: 1,
		poolP: unsafe.Pointer(&pool[0]), poolMax: poolMax, poolLen: poolLen,
		freeOff: freeOff, freeWords: freeWords, liftOff: liftOff, liftWords: liftWords}
	for p := range poolLen {
		*sh.freeWord(p / 64) |= 1 << (p % 64)
	}
	for s := range cowSlots {
		sh.slots[s] = cowSlot{stateOff: stateOffs[s], whereOff: whereOffs[s], leftOff: leftOffs[s], needOff: needOffs[s]}
	}
	fds := [3]int{-1, -1, -1}
	for i := range fds {
		fd, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
		if err != nil {
			for _, f := range fds[:i] {
				unix.Close(f)
			}
			c.unmap()
			return nil, err
		}
		fds[i] = fd
	}
	sh.ctl, sh.ack, sh.prog = int32(fds[0]), int32(fds[1]), int32(fds[2])
	c.ctlFd = fds[0]
	c.ackF = os.NewFile(uintptr(fds[1]), "cow-ack")
	c.prog = os.NewFile(uintptr(fds[2]), "cow-progress")
	go func() {
		// Locked for good: the thread ends with the goroutine.
		runtime.LockOSThread()
		cowServe(sh)
		close(c.exited)
	}()
	go c.watch()
	return c, nil
}

const cowBuilt = true

// Idle waits until every snapshot's readers are done with it and its
// blocks are given back.
func (t *Tracker) Idle() {
	if t.cow != nil {
		t.cow.idle()
	}
}

// Hold stops the handler's reaps until the returned function is called:
// while the guest is paused, the protection and the block states then
// change only by the caller's hand (no reap of a block an earlier
// snapshot's reader has read lifts its protection between the caller's
// reading and its writing of them, nor between Collect and Freeze). A
// worker holds the tracker from before Collect to after Freeze. Holds
// nest; the calls that change the protection hold it themselves.
func (t *Tracker) Hold() func() {
	c := t.cow
	if c == nil {
		return func() {}
	}
	c.holdMu.Lock()
	if c.holds == 0 {
		c.command(cmdHold, 0, true)
	}
	c.holds++
	c.holdMu.Unlock()
	return func() {
		c.holdMu.Lock()
		if c.holds--; c.holds == 0 {
			c.command(cmdResume, 0, false)
		}
		c.holdMu.Unlock()
	}
}

// Ready waits until a snapshot may be frozen: while two are under way,
// until the older one is read. Call it before Hold, which would keep the
// older one's blocks from being given back.
func (t *Tracker) Ready() {
	if c := t.cow; c != nil {
		t0 := time.Now()
		c.mu.Lock()
		c.slot()
		c.mu.Unlock()
		c.waited.Add(int64(time.Since(t0)))
	}
}

// Waited returns how long Freeze waited for an earlier snapshot's
// reader, because two were under way, since the last call.
func (t *Tracker) Waited() time.Duration {
	if t.cow == nil {
		return 0
	}
	return time.Duration(t.cow.waited.Swap(0))
}

// unprotect lifts the write protection of [start, end) but for the blocks
// a snapshot still has to read from guest memory: those are left to the
// handler, which lifts their protection once read or copied (their keep
// flag is cleared). The caller holds t.mu and the tracker (Hold).
func (t *Tracker) unprotect(start, end uint64) error {
	c := t.cow
	if c == nil {
		return t.protect(start, end, false)
	}
	sh := c.sh
	keep := sh.keeps()
	pending := func(b uint64) bool {
		for s := range uint32(cowSlots) {
			if cowPendingIn(sh, s, b) {
				return true
			}
		}
		return false
	}
	from := start
	for b := start / CopyBlock; b*CopyBlock < end; b++ {
		if !pending(b) {
			continue
		}
		keep[b] = 0
		lo := max(b*CopyBlock, start)
		if from < lo {
			if err := t.protect(from, lo, false); err != nil {
				return err
			}
		}
		from = min((b+1)*CopyBlock, end)
	}
	if from < end {
		return t.protect(from, end, false)
	}
	return nil
}

// The lifted bitmap has a bit per TrackUnit of the mapping, set before
// its write protection is lifted (by the handler, cowLifted, or by Go
// code, markLifted) and cleared before it is put back (clearLifted):
// while the tracker is armed, the units with their bit set are the ones
// written since the last Collect (TestCOWLifted checks them against the
// page tables), which so needs no walk of the page tables (PAGEMAP_SCAN)
// that grows with the memory; nor does the guard, which held the
// tracker's lock for one and so could stretch a pause.

// markLifted sets the bits of the units [start, end) of the mapping
// touches: Go code lifted their protection.
func (c *cow) markLifted(start, end uint64) {
	if end = min(end, c.sh.limit); start < end {
		cowLifted(c.sh, start, end-start)
	}
}

// clearLifted clears the bits of the units wholly in [start, end), which
// are about to be protected.
func (c *cow) clearLifted(start, end uint64) {
	lo, hi := (start+TrackUnit-1)/TrackUnit, min(end, c.sh.limit)/TrackUnit
	lifts := c.sh.lifts()
	for u := lo; u < hi; {
		w := u / 64
		n := min(hi-u, 64-u%64)
		mask := ^uint64(0) >> (64 - n) << (u % 64)
		atomic.AndUint64(&lifts[w], ^mask)
		u += n
	}
}

// liftMask is the bits of lifted word w that stand for units below hi.
func liftMask(w, hi uint64) uint64 {
	if left := hi - w*64; left < 64 {
		return 1<<left - 1
	}
	return ^uint64(0)
}

// takeLifted reports the runs of units below end whose bits are set,
// clipped to end, and clears those bits.
func (c *cow) takeLifted(end uint64, fn func(start, end uint64)) {
	end = min(end, c.sh.limit)
	hi := (end + TrackUnit - 1) / TrackUnit
	lifts := c.sh.lifts()
	var run, runEnd uint64
	open := false
	for w := uint64(0); w*64 < hi; w++ {
		mask := liftMask(w, hi)
		v := atomic.AndUint64(&lifts[w], ^mask) & mask
		for v != 0 {
			u := w*64 + uint64(bits.TrailingZeros64(v))
			v &= v - 1
			if open && u*TrackUnit == runEnd {
				runEnd += TrackUnit
				continue
			}
			if open {
				fn(run, min(runEnd, end))
			}
			run, runEnd, open = u*TrackUnit, (u+1)*TrackUnit, true
		}
	}
	if open {
		fn(run, min(runEnd, end))
	}
}

// countLifted returns how many bytes of the units below end have their
// bits set.
func (c *cow) countLifted(end uint64) uint64 {
	end = min(end, c.sh.limit)
	hi := (end + TrackUnit - 1) / TrackUnit
	lifts := c.sh.lifts()
	var n uint64
	for w := uint64(0); w*64 < hi; w++ {
		n += uint64(bits.OnesCount64(atomic.LoadUint64(&lifts[w]) & liftMask(w, hi)))
	}
	return n * TrackUnit
}

// copyingNow reports whether a snapshot's read is under way.
func (t *Tracker) copyingNow() bool {
	c := t.cow
	if c == nil {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for s := range cowSlots {
		if c.snaps[s] != nil && atomic.LoadUint64(&c.sh.slots[s].pending) > 0 {
			return true
		}
	}
	return false
}

// minNeedUnit is the finest granularity of a capture's needs.
const minNeedUnit = 4 << 10

// watch wakes the waiters of Snapshot.Wait on every progress signal.
func (c *cow) watch() {
	var b [8]byte
	for {
		_, err := c.prog.Read(b[:])
		c.mu.Lock()
		c.cond.Broadcast()
		c.mu.Unlock()
		if err != nil {
			return
		}
	}
}

// command has the handler thread run cmd on slot arg, in order after the
// commands given before, and waits for it to be done if wait.
func (c *cow) command(cmd, arg uint32, wait bool) {
	c.cmdMu.Lock()
	defer c.cmdMu.Unlock()
	sh := c.sh
	seq := atomic.LoadUint32(&sh.seq)
	c.waitAck(seq - cmdRing + 1) // a free place in the ring
	atomic.StoreUint32(&sh.cmds[seq%cmdRing].cmd, cmd)
	atomic.StoreUint32(&sh.cmds[seq%cmdRing].arg, arg)
	atomic.StoreUint32(&sh.seq, seq+1)
	one := [8]byte{1}
	_, _ = unix.Write(c.ctlFd, one[:])
	if wait {
		c.waitAck(seq + 1)
	}
}

// waitAck waits until the handler has taken the first n commands. The
// caller holds cmdMu.
func (c *cow) waitAck(n uint32) {
	var b [8]byte
	for int32(atomic.LoadUint32(&c.sh.acked)-n) < 0 {
		if _, err := c.ackF.Read(b[:]); err != nil {
			return
		}
	}
}

// idle waits until no capture uses the memory or the pool: every
// Snapshot's reader done and its blocks reaped.
func (c *cow) idle() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for s := range uint32(cowSlots) {
		for c.snaps[s] != nil && !c.snaps[s].finished() {
			c.cond.Wait()
		}
		c.reap(s)
	}
}

// slot returns a slot for the next snapshot: a free one, or the one whose
// snapshot is done with first. It waits only while both slots' snapshots
// are still being read. The caller holds c.mu.
func (c *cow) slot() uint32 {
	for {
		for s := range uint32(cowSlots) {
			if c.snaps[s] != nil && c.snaps[s].finished() {
				c.reap(s)
			}
		}
		for s := range uint32(cowSlots) {
			if c.snaps[s] == nil {
				return s
			}
		}
		c.cond.Wait()
	}
}

// reap frees slot s of a finished snapshot. The caller holds c.mu.
func (c *cow) reap(s uint32) {
	c.snaps[s] = nil
}

func (c *cow) close() {
	c.idle()
	c.command(cmdExit, 0, true)
	<-c.exited
	unix.Close(c.ctlFd)
	c.ackF.Close()
	c.prog.Close() // ends watch
	c.unmap()
}

func (c *cow) unmap() {
	if c.pool != nil {
		unix.Munmap(c.pool)
		c.pool = nil
	}
	if c.region != nil {
		unix.Munmap(c.region)
		c.region = nil
	}
}

// Snapshot is the memory of a guest as it was at Freeze, read while the
// guest runs on. Its readers say what they need (Need), take the blocks
// to read in the order Next gives, copy each chunk out (Read) and say
// when they are done (Done).
type Snapshot struct {
	c       *cow
	slot    uint32
	size    uint64
	started atomic.Bool
	readers atomic.Int32
	done    atomic.Bool
	readAll bool // ReadAll's reader, which Drop ends

	nextMu sync.Mutex // Next's order
	handed []bool     // by group (Next)
	cursor int
	wack   uint32 // the wants seen
}

// Memory returns the guest's memory, the snapshot's size of it: only its
// length is the snapshot's, and during the pause its bytes (ReadAll).
// Read the snapshot through Read.
func (s *Snapshot) Memory() []byte { return s.c.mem[:s.size] }

// Need tells which pieces of chunkSize bytes a reader will read (nil: all
// of them); the first reader's needs are what is kept, the others' are
// not. Each Need counts a reader, which Done ends.
func (s *Snapshot) Need(chunkSize int, need []bool) {
	s.readers.Add(1)
	s.start(chunkSize, need)
}

func (s *Snapshot) start(chunkSize int, need []bool) {
	if s.started.Swap(true) {
		return
	}
	sh := s.c.sh
	sl := &sh.slots[s.slot]
	cs := uint64(chunkSize)
	if cs < minNeedUnit || cs&(cs-1) != 0 || cs > CopyBlock {
		cs = minNeedUnit
	}
	// Only the snapshot's own units: the handler reads no others.
	ns := sh.needs(s.slot)[:min(sh.needLen, (s.size+cs-1)/cs)]
	if cs != uint64(chunkSize) {
		// Expand to 4 KiB units.
		per := uint64(chunkSize) / minNeedUnit
		for i := range ns {
			j := uint64(i) / max(per, 1)
			ns[i] = b2u(need == nil || j < uint64(len(need)) && need[j])
		}
	} else {
		for i := range ns {
			ns[i] = b2u(need == nil || i < len(need) && need[i])
		}
	}
	// Each block's needed units: the block is read once Read has taken
	// them all.
	left := sh.lefts(s.slot)
	per := CopyBlock / cs
	for b := range s.blocks() {
		n := uint32(0)
		for _, v := range ns[b*per : min((b+1)*per, uint64(len(ns)))] {
			n += uint32(v)
		}
		atomic.StoreUint32(&left[b], n)
	}
	sl.chunk = cs
	atomic.StoreUint32(&sl.started, 1)
	woke := false
	for b := range s.blocks() {
		if atomic.LoadUint32(&left[b]) == 0 {
			woke = s.consume(b) || woke
		}
	}
	if woke {
		s.c.wake()
	}
}

// blocks is how many blocks the snapshot covers.
func (s *Snapshot) blocks() uint64 {
	return min(s.c.sh.nblocks, (s.size+CopyBlock-1)/CopyBlock)
}

// consume marks block b read (from guest memory or from its shadow
// block), for the handler to reap; false if it was not pending or copied.
func (s *Snapshot) consume(b uint64) bool {
	sh := s.c.sh
	st := sh.state(s.slot, b)
	for {
		switch v := atomic.LoadUint32(st); v {
		case blockPending:
			if !atomic.CompareAndSwapUint32(st, blockPending, blockReadMem) {
				continue // copied meanwhile
			}
		case blockCopied:
			atomic.StoreUint32(st, blockReadCopy) // only the reader moves it on
		default:
			return false
		}
		atomic.AddUint64(&sh.consumed, 1)
		return true
	}
}

// wake has the handler reap what the readers have read.
func (c *cow) wake() {
	one := [8]byte{1}
	_, _ = unix.Write(c.ctlFd, one[:])
}

func b2u(b bool) byte {
	if b {
		return 1
	}
	return 0
}

// Read copies chunk i (of Need's chunkSize) as it was at the freeze into
// dst (grown if short) and returns it. Read each needed chunk once: a
// block is read, and its protection lifted, once every chunk it holds
// that Need asked for was.
func (s *Snapshot) Read(dst []byte, i, chunkSize int) []byte {
	sh := s.c.sh
	off := uint64(i) * uint64(chunkSize)
	end := min(off+uint64(chunkSize), s.size)
	if off >= end {
		return dst[:0]
	}
	if uint64(cap(dst)) < end-off {
		dst = make([]byte, end-off)
	}
	dst = dst[:end-off]
	cs := sh.slots[s.slot].chunk
	woke := false
	for lo := off; lo < end; {
		b := lo / CopyBlock
		hi := min((b+1)*CopyBlock, end)
		s.readPiece(dst[lo-off:hi-off], b, lo)
		// The needed units of [lo, hi), which Read takes once.
		n := uint32(0)
		if cs != 0 {
			ns := sh.needs(s.slot)
			for u := lo / cs; u < (hi+cs-1)/cs && u < uint64(len(ns)); u++ {
				n += uint32(ns[u])
			}
		}
		if n > 0 && atomic.AddUint32(sh.left(s.slot, b), -n) == 0 {
			woke = s.consume(b) || woke
		}
		lo = hi
	}
	if woke {
		s.c.wake()
	}
	return dst
}

// readPiece copies [lo, lo+len(dst)) of block b into dst: from guest
// memory while the block is pending (it checks afterwards that it still
// is: the handler may have copied it and lifted its protection
// meanwhile), else from its shadow block.
func (s *Snapshot) readPiece(dst []byte, b, lo uint64) {
	sh := s.c.sh
	st := sh.state(s.slot, b)
	if atomic.LoadUint32(st) == blockPending {
		copy(dst, s.c.mem[lo:])
		if atomic.CompareAndSwapUint32(st, blockPending, blockPending) {
			return
		}
	}
	if v := atomic.LoadUint32(st); v != blockCopied && v != blockReadCopy {
		// Not needed by the first reader: read where it is, unchecked.
		copy(dst, s.c.mem[lo:])
		return
	}
	p := uint64(atomic.LoadUint32(sh.where(s.slot, b)))
	copy(dst, s.c.pool[p*CopyBlock+lo-b*CopyBlock:])
}

// Next returns the next range [lo, hi) of chunks (of chunkSize) for a
// reader to read: the blocks the handler copied first (reading them gives
// their shadow blocks back), then in order; lo == hi once all were given.
// Several readers may share the ranges.
func (s *Snapshot) Next(chunkSize int) (lo, hi int) {
	sh := s.c.sh
	cs := uint64(chunkSize)
	n := int((s.size + cs - 1) / cs)
	// A group is a block of chunks, or a chunk of blocks.
	per, groups := uint64(1), uint64(n)
	if cs < CopyBlock {
		per, groups = CopyBlock/cs, s.blocks()
	}
	s.nextMu.Lock()
	defer s.nextMu.Unlock()
	if s.handed == nil {
		s.handed = make([]bool, groups)
		s.wack = atomic.LoadUint32(&sh.wseq) - wantRing
	}
	give := func(g uint64) (int, int, bool) {
		if g >= groups || s.handed[g] {
			return 0, 0, false
		}
		s.handed[g] = true
		return int(g * per), min(int((g+1)*per), n), true
	}
	for w := atomic.LoadUint32(&sh.wseq); s.wack != w; s.wack++ {
		if w-s.wack > wantRing {
			s.wack = w - wantRing
		}
		b := uint64(atomic.LoadUint32(&sh.wants[s.wack%wantRing]))
		if lo, hi, ok := give(b * CopyBlock / cs / per); ok {
			s.wack++
			return lo, hi
		}
	}
	for uint64(s.cursor) < groups {
		g := uint64(s.cursor)
		s.cursor++
		if lo, hi, ok := give(g); ok {
			return lo, hi
		}
	}
	return n, n
}

// Done ends a reader: once the last is done, the snapshot is, and what
// it has not read is given back.
func (s *Snapshot) Done() {
	s.start(minNeedUnit, []bool{}) // a reader that needed nothing
	if s.readers.Add(-1) > 0 {
		return
	}
	s.end()
}

// end gives back every block of the snapshot not yet read.
func (s *Snapshot) end() {
	woke := false
	for b := range s.blocks() {
		woke = s.consume(b) || woke
	}
	if woke {
		s.c.wake()
	}
	s.done.Store(true)
	s.c.mu.Lock()
	s.c.cond.Broadcast()
	s.c.mu.Unlock()
}

// ReadAll returns the snapshot, for a reader at the pause: while the
// guest is paused its memory is the snapshot's. Drop ends that reader.
// Call it before any other reader's Need.
func (s *Snapshot) ReadAll() []byte {
	if !s.readAll {
		s.readAll = true
		s.readers.Add(1)
	}
	return s.Memory()
}

// Drop ends the pause: the snapshot is done with unless a reader other
// than ReadAll's still needs it.
func (s *Snapshot) Drop() {
	if !s.started.Load() || s.readAll {
		s.Done()
	}
}

// finished reports whether the snapshot no longer needs the memory's
// protection or the pool.
func (s *Snapshot) finished() bool {
	return s.done.Load() && atomic.LoadUint64(&s.c.sh.slots[s.slot].pending) == 0
}

// Freeze protects [0, size) of the mapping, what Collect did not protect
// already, and returns the snapshot of it. Call it while the guest is
// paused, after Collect if tracking is on. The snapshot before may still
// be read meanwhile; the one before that must be done with (Done), which
// Freeze waits for (Ready: call that first if the tracker is held).
func (t *Tracker) Freeze(size uint64) (*Snapshot, error) {
	if t.cow == nil {
		return nil, ErrUnsupported
	}
	c := t.cow
	t.Ready()
	c.mu.Lock()
	slot := c.slot()
	c.mu.Unlock()
	defer t.Hold()()
	t.mu.Lock()
	defer t.mu.Unlock()
	size = min((size+t.page-1)/t.page*t.page, t.limit)
	sh := c.sh
	keep := sh.keeps()
	for b := range keep {
		keep[b] = b2u(t.armed > 0 || t.inProbe(uint64(b)*CopyBlock))
	}
	freeze(sh, slot, size)
	if size > t.armed {
		// Not counted in Protected: tracking does not pay for it.
		protected := t.protected
		err := t.protect(t.armed, size, true)
		t.protected = protected
		if err != nil {
			s := &Snapshot{c: c, slot: slot, size: size}
			s.started.Store(true)
			c.mu.Lock()
			c.snaps[slot] = s
			c.mu.Unlock()
			s.end() // given back once the hold ends
			return nil, fmt.Errorf("dirty: UFFDIO_WRITEPROTECT: %w", err)
		}
	}
	s := &Snapshot{c: c, slot: slot, size: size}
	c.mu.Lock()
	c.snaps[slot] = s
	c.mu.Unlock()
	return s, nil
}

// freeze makes every block of slot s's capture of size bytes pending:
// from now on a fault copies its block before it lifts the protection,
// and a reader reads it from guest memory until then. It runs with the
// slot free, the handler held (no reap) and the guest paused: nothing
// writes to the memory meanwhile, so no fault is in flight and the
// handler touches none of the slot's state; the handler's next fault sees
// it after the syscalls that wake it.
func freeze(sh *cowShared, s uint32, size uint64) {
	sl := &sh.slots[s]
	st := sh.states(s)
	nb := min(uint64(len(st)), (size+CopyBlock-1)/CopyBlock)
	sl.size = size
	atomic.StoreUint32(&sl.started, 0)
	atomic.StoreUint64(&sl.pending, nb)
	for b := range st {
		atomic.StoreUint32(&st[b], b2u32(uint64(b) < nb))
	}
}

// b2u32 is blockPending for true, blockFree for false.
func b2u32(pending bool) uint32 {
	if pending {
		return blockPending
	}
	return blockFree
}

// inProbe reports whether the block at off is in the running probe's
// sample. The caller holds t.mu.
func (t *Tracker) inProbe(off uint64) bool {
	for _, r := range t.probe {
		if off < r[1] && r[0] < off+CopyBlock {
			return true
		}
	}
	return false
}

// Release lifts the write protection of b, a range of the mapping, before
// the kernel writes into it (a read(2) into guest memory): a write there
// by the kernel would fail with EFAULT rather than wait. It writes to each
// page of b from user space, which has the handler copy what a capture
// needs first and lift the protection. b's bytes do not change (each
// write adds 0).
func Release(b []byte) {
	if len(b) == 0 {
		return
	}
	start := unsafe.Pointer(unsafe.SliceData(b))
	p := uintptr(start)
	end := p + uintptr(len(b))
	page := uintptr(os.Getpagesize())
	for a := p &^ (page - 1); a < end; a += page {
		// The aligned word at the page's first byte of b: guest memory
		// is mapped in whole pages, so the word is too.
		w := max(a, p&^3)
		atomic.AddUint32((*uint32)(unsafe.Add(start, int(w)-int(p))), 0)
	}
}

// Faults returns how many write faults the handler resolved and how many
// blocks it copied since New (a block pending in two snapshots counts
// twice).
func (t *Tracker) Faults() (faults, copied uint64) {
	if t.cow == nil {
		return 0, 0
	}
	return atomic.LoadUint64(&t.cow.sh.faults), atomic.LoadUint64(&t.cow.sh.copied)
}

// Pool reports the tracker's shadow blocks.
func (t *Tracker) Pool() PoolStats {
	if t.cow == nil {
		return PoolStats{}
	}
	sh := t.cow.sh
	return PoolStats{Blocks: int(sh.poolMax), InUse: int(atomic.LoadUint64(&sh.inuse)),
		Peak: int(atomic.LoadUint64(&sh.peak)), Overflow: atomic.LoadUint64(&sh.overflow),
		Throttled: time.Duration(t.cow.throttled.Load()),
		Faulted:   time.Duration(atomic.LoadUint64(&sh.faultNs))}
}

// ZeroWhenFull has the handler store 0 into *word whenever its copy of a
// block the guest wrote leaves the pool full, before the guest goes on
// (nil: no more). A worker gives it the guest's preemption counter
// (wasmbin.PreemptCounterName) as wazero's compiled code keeps it: the
// guest then calls libra.preempt, and so Throttle, at its next loop head,
// so that what is copied beyond the pool is only what it writes until
// then. The guest cannot wait in its faults, and Throttle waits only
// where it is called: without this, a guest that writes all over its
// memory faulted, between two preemption calls, on most of its blocks,
// each copied beyond the pool. A goroutine setting the counter comes too
// late: while the guest waits in a fault it holds its P, and the
// goroutine waits for the other one for milliseconds, as long as the
// guest takes to fault on a hundred blocks. The handler stores into *word
// as C code would into Go memory: word must point into a pinned object
// (runtime.Pinner) and stay valid until Close.
func (t *Tracker) ZeroWhenFull(word *uint32) {
	if t.cow != nil {
		atomic.StorePointer(&t.cow.sh.full, unsafe.Pointer(word))
	}
}

// Throttle waits, while the pool is full, until the snapshots' readers
// have given shadow blocks back, and reports whether it waited. The
// guest's goroutine calls it where it may wait (its preemption calls,
// never in a fault): so a guest that writes faster than a capture reads
// waits for it, and the pool stays within its size but for what the
// guest copies between two calls.
func (t *Tracker) Throttle() bool {
	c := t.cow
	if c == nil || atomic.LoadUint64(&c.sh.inuse) < c.sh.poolMax {
		return false
	}
	t0 := time.Now()
	c.mu.Lock()
	for atomic.LoadUint64(&c.sh.inuse) >= c.sh.poolMax {
		c.cond.Wait()
	}
	c.mu.Unlock()
	c.throttled.Add(int64(time.Since(t0)))
	return true
}
