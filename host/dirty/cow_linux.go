//go:build linux && !race

package dirty

import (
	"fmt"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/librahost/librahost/host/uffd"
	"golang.org/x/sys/unix"
)

// Block states, in each slot's states array.
const (
	blockFree    = 0 // nothing to copy: a fault just lifts the protection
	blockPending = 1 // to be copied before a write may go on
	blockCopied  = 2
)

// Commands to the handler.
const (
	cmdNone = iota
	cmdStart
	cmdHold   // copy nothing in the background until cmdResume
	cmdResume // ends a cmdHold
	cmdExit
)

// cmdRing is how many commands may wait for the handler: Go code gives
// a command without waiting for the one before to be taken (the handler
// takes them between two blocks it copies, which under load can be
// milliseconds), unless the ring is full.
const cmdRing = 16

// cowCmd is a command to the handler: cmd on slot arg.
type cowCmd struct{ cmd, arg uint32 }

// cowSlots is how many snapshots may be under way at once: a capture may
// freeze while the one before is still being copied and read.
const cowSlots = 2

// cowSlot is one snapshot's share of cowShared: its own shadow, block
// states and needs.
type cowSlot struct {
	shadowP           unsafe.Pointer // mmap'd, not the Go heap's
	stateOff, needOff uint64
	gen               uint64 // freeze order: the older slot is copied first
	started           uint32 // the capture said what it needs
	_                 uint32
	size              uint64 // the capture's memory size
	chunk             uint64 // need granularity
	pending           uint64 // blocks still pending
	cursor            uint64 // handler-owned: next block of the background copy
}

// cowShared is the state the handler thread and Go code share. It lives in
// an mmap'd region, outside the Go heap, followed by the arrays: per slot
// one state (uint32) per block and one need flag (byte) per 4 KiB of the
// mapping; one keep flag (byte) per block.
type cowShared struct {
	uffd, ctl, ack, prog int32 // eventfds: commands, their acks, copy progress
	base, limit          uint64
	baseP                unsafe.Pointer // mmap'd memory, not the Go heap's
	page                 uint64
	nblocks              uint64
	keepOff, needLen     uint64

	seq, acked uint32          // commands given, and taken by the handler
	cmds       [cmdRing]cowCmd // the commands not yet taken, by seq
	hold       uint32          // handler-owned: cmdHolds not yet resumed
	_          uint32
	slots      [cowSlots]cowSlot

	faults, copied, errs uint64 // counters

	// The handler's syscall buffers, kept out of its nosplit frames.
	msg  uffd.Msg             // a fault
	wp   uffd.WriteProtectArg // a protection lifted
	fds  [2]pollFd            // what it sleeps on
	word uint64               // a command eventfd's count
	one  uint64               // 1, what it adds to an eventfd
}

//go:nosplit
func (sh *cowShared) at(off uint64) unsafe.Pointer {
	return unsafe.Add(unsafe.Pointer(sh), off)
}

// state, keep and need are the handler's unchecked indexing (it may not
// call the runtime's bounds panics): the caller proves s < cowSlots,
// b < nblocks and i < needLen.
//
//go:nosplit
func (sh *cowShared) state(s uint32, b uint64) *uint32 {
	return (*uint32)(sh.at(sh.slots[s%cowSlots].stateOff + 4*b))
}

//go:nosplit
func (sh *cowShared) keep(b uint64) *byte { return (*byte)(sh.at(sh.keepOff + b)) }

//go:nosplit
func (sh *cowShared) need(s uint32, i uint64) *byte {
	return (*byte)(sh.at(sh.slots[s%cowSlots].needOff + i))
}

//go:nosplit
func (sh *cowShared) states(s uint32) []uint32 {
	return unsafe.Slice((*uint32)(sh.at(sh.slots[s].stateOff)), sh.nblocks)
}

//go:nosplit
func (sh *cowShared) keeps() []byte { return unsafe.Slice((*byte)(sh.at(sh.keepOff)), sh.nblocks) }

//go:nosplit
func (sh *cowShared) needs(s uint32) []byte {
	return unsafe.Slice((*byte)(sh.at(sh.slots[s].needOff)), sh.needLen)
}

// cow is a tracker's copy-on-write machinery.
type cow struct {
	region  []byte // cowShared and its arrays
	sh      *cowShared
	shadows [cowSlots][]byte
	prog    *os.File // read end of sh.prog, through the poller
	ackF    *os.File
	ctlFd   int
	exited  chan struct{}

	cmdMu sync.Mutex // one command at a time

	mu    sync.Mutex
	cond  *sync.Cond // broadcast on progress
	snaps [cowSlots]*Snapshot
	gen   uint64 // freezes so far

	holdMu sync.Mutex
	holds  int // Hold calls not yet resumed

	waited atomic.Int64 // see Tracker.Waited
}

// startCOW sets up the shared state and the shadows of a mapping and
// starts the handler thread on uffd.
func startCOW(fd int, mem unsafe.Pointer, limit, page uint64) (*cow, error) {
	base := uint64(uintptr(mem))
	nblocks := (limit + CopyBlock - 1) / CopyBlock
	needLen := (limit + minNeedUnit - 1) / minNeedUnit
	off := (uint64(unsafe.Sizeof(cowShared{})) + 7) &^ 7
	var stateOffs, needOffs [cowSlots]uint64
	for s := range cowSlots {
		stateOffs[s] = off
		off += 4 * nblocks
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
	c := &cow{region: region, exited: make(chan struct{}), ctlFd: -1}
	c.cond = sync.NewCond(&c.mu)
	for s := range cowSlots {
		shadow, err := unix.Mmap(-1, 0, int(limit), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS|unix.MAP_NORESERVE)
		if err != nil {
			c.unmap()
			return nil, err
		}
		_ = unix.Madvise(shadow, unix.MADV_HUGEPAGE)
		c.shadows[s] = shadow
	}
	sh := (*cowShared)(unsafe.Pointer(&region[0]))
	c.sh = sh
	*sh = cowShared{uffd: int32(fd), base: base, limit: limit, page: page, nblocks: nblocks,
		keepOff: keepOff, needLen: needLen, baseP: mem, ctl: -1, ack: -1, prog: -1, one: 1}
	for s := range cowSlots {
		sh.slots[s] = cowSlot{shadowP: unsafe.Pointer(&c.shadows[s][0]), stateOff: stateOffs[s], needOff: needOffs[s]}
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

// Idle waits until every snapshot is copied and its readers are done
// with it.
func (t *Tracker) Idle() {
	if t.cow != nil {
		t.cow.idle()
	}
}

// Hold stops the handler's background copy until the returned function
// is called: while the guest is paused, the protection and the block
// states then change only by the caller's hand (no background copy of an
// earlier snapshot lifts the protection of a block between the caller's
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
// until the older one is copied and read. Call it before Hold, which
// would keep the older one from being copied.
func (t *Tracker) Ready() {
	if c := t.cow; c != nil {
		t0 := time.Now()
		c.mu.Lock()
		c.slot()
		c.mu.Unlock()
		c.waited.Add(int64(time.Since(t0)))
	}
}

// Waited returns how long Freeze waited for an earlier snapshot's copy
// and reader, because two were under way, since the last call.
func (t *Tracker) Waited() time.Duration {
	if t.cow == nil {
		return 0
	}
	return time.Duration(t.cow.waited.Swap(0))
}

// unprotect lifts the write protection of [start, end) but for the blocks
// a snapshot still has to copy: those are left to the handler, which
// lifts their protection once copied (their keep flag is cleared). The
// caller holds t.mu and the tracker (Hold).
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

// copyingNow reports whether a snapshot's copy is under way.
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

// synced waits until the handler has taken every command given.
func (c *cow) synced() {
	c.cmdMu.Lock()
	defer c.cmdMu.Unlock()
	c.waitAck(atomic.LoadUint32(&c.sh.seq))
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

// idle waits until no capture uses a shadow: every pending block copied,
// and every Snapshot's reader done.
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
// are still being copied or read. The caller holds c.mu.
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
	if c.snaps[s] == nil {
		return
	}
	c.snaps[s] = nil
	// Give the copies back, lazily: the kernel takes them when memory is
	// short; until then the next capture reuses them, without the faults
	// and the zeroing of fresh pages (with MADV_DONTNEED, a quarter of a
	// 1 GiB random writer's checkpoint CPU; bench/RESULTS.md).
	_ = unix.Madvise(c.shadows[s], unix.MADV_FREE)
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
	for s := range c.shadows {
		if c.shadows[s] != nil {
			unix.Munmap(c.shadows[s])
			c.shadows[s] = nil
		}
	}
	if c.region != nil {
		unix.Munmap(c.region)
		c.region = nil
	}
}

// Snapshot is the memory of a guest as it was at Freeze, being copied
// while the guest runs on. Its readers say what they need (Need), wait for
// each piece (Wait) and say when they are done (Done).
type Snapshot struct {
	c       *cow
	slot    uint32
	size    uint64
	started atomic.Bool
	readers atomic.Int32
	done    atomic.Bool
	readAll bool // ReadAll's reader, which Drop ends
}

// Memory returns the snapshot's memory; read a piece only once Wait
// returned for it.
func (s *Snapshot) Memory() []byte { return s.c.shadows[s.slot][:s.size] }

// Need tells which pieces of chunkSize bytes a reader will read (nil: all
// of them); the first reader's needs are what is copied, the others are
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
	sl.chunk = cs
	s.c.command(cmdStart, s.slot, false)
}

func b2u(b bool) byte {
	if b {
		return 1
	}
	return 0
}

// Wait blocks until chunk i (of Need's chunkSize) holds its captured bytes.
func (s *Snapshot) Wait(i int, chunkSize int) {
	b := uint64(i) * uint64(chunkSize) / CopyBlock
	st := s.c.sh.states(s.slot)
	if b >= uint64(len(st)) || atomic.LoadUint32(&st[b]) != blockPending {
		return
	}
	s.c.mu.Lock()
	defer s.c.mu.Unlock()
	for atomic.LoadUint32(&st[b]) == blockPending {
		s.c.cond.Wait()
	}
}

// Done ends a reader: once the last is done, the snapshot is.
func (s *Snapshot) Done() {
	s.start(minNeedUnit, []bool{}) // a reader that needed nothing
	if s.readers.Add(-1) > 0 {
		return
	}
	s.done.Store(true)
	s.c.mu.Lock()
	s.c.cond.Broadcast()
	s.c.mu.Unlock()
}

// ReadAll waits for the whole snapshot to be copied and returns it, for
// a reader at the pause; Drop ends that reader. Call it before any other
// reader's Need.
func (s *Snapshot) ReadAll() []byte {
	if !s.readAll {
		s.readAll = true
		s.Need(CopyBlock, nil)
		for i := range (s.size + CopyBlock - 1) / CopyBlock {
			s.Wait(int(i), CopyBlock)
		}
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

// finished reports whether the snapshot no longer needs its shadow.
func (s *Snapshot) finished() bool {
	return s.done.Load() && atomic.LoadUint64(&s.c.sh.slots[s.slot].pending) == 0
}

// Freeze protects [0, size) of the mapping, what Collect did not protect
// already, and returns the snapshot of it. Call it while the guest is
// paused, after Collect if tracking is on. The snapshot before may still
// be copied and read meanwhile; the one before that must be done with
// (Done), which Freeze waits for (Ready: call that first if the tracker
// is held). A snapshot's copy ends by itself.
func (t *Tracker) Freeze(size uint64) (*Snapshot, error) {
	if t.cow == nil {
		return nil, ErrUnsupported
	}
	c := t.cow
	t.Ready()
	c.mu.Lock()
	slot := c.slot()
	c.mu.Unlock()
	// The slot's last start command, if not yet taken, would apply its
	// needs to this one's blocks.
	c.synced()
	defer t.Hold()()
	t.mu.Lock()
	defer t.mu.Unlock()
	size = min((size+t.page-1)/t.page*t.page, t.limit)
	sh := c.sh
	keep := sh.keeps()
	for b := range keep {
		keep[b] = b2u(t.armed > 0 || t.inProbe(uint64(b)*CopyBlock))
	}
	c.gen++
	freeze(sh, slot, size, c.gen)
	if size > t.armed {
		// Not counted in Protected: tracking does not pay for it.
		protected := t.protected
		err := t.protect(t.armed, size, true)
		t.protected = protected
		if err != nil {
			sh.slots[slot].chunk = 0
			c.command(cmdStart, slot, false) // copies what a write needs, then ends
			c.mu.Lock()
			c.snaps[slot] = &Snapshot{c: c, slot: slot, size: size}
			c.snaps[slot].done.Store(true)
			c.mu.Unlock()
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
// from now on a fault copies its whole block before it lifts the
// protection. It runs with the slot free, the handler held (no
// background copy) and the guest paused: nothing writes to the memory
// meanwhile, so no fault is in flight and the handler touches none of the
// slot's state; the handler's next command (or fault) sees it after the
// syscalls that wake it.
func freeze(sh *cowShared, s uint32, size, gen uint64) {
	sl := &sh.slots[s]
	st := sh.states(s)
	nb := min(uint64(len(st)), (size+CopyBlock-1)/CopyBlock)
	sl.size, sl.gen, sl.cursor = size, gen, 0
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
// blocks it copied since New.
func (t *Tracker) Faults() (faults, copied uint64) {
	if t.cow == nil {
		return 0, 0
	}
	return atomic.LoadUint64(&t.cow.sh.faults), atomic.LoadUint64(&t.cow.sh.copied)
}
