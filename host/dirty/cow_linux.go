//go:build linux && !race

package dirty

import (
	"fmt"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Block states, in cowShared's states array.
const (
	blockFree    = 0 // nothing to copy: a fault just lifts the protection
	blockPending = 1 // to be copied before a write may go on
	blockCopied  = 2
)

// Commands to the handler.
const (
	cmdNone = iota
	cmdStart
	cmdExit
)

// cowShared is the state the handler thread and Go code share. It lives in
// an mmap'd region, outside the Go heap, followed by the arrays: one state
// (uint32) and one keep flag (byte) per block, one need flag (byte) per
// 4 KiB of the mapping.
type cowShared struct {
	uffd, ctl, ack, prog int32 // eventfds: commands, their acks, copy progress
	base, limit          uint64
	baseP, shadowP       unsafe.Pointer // mmap'd memory, not the Go heap's
	page                 uint64
	nblocks              uint64
	stateOff, keepOff    uint64
	needOff, needLen     uint64

	seq, acked, cmd uint32 // command slot
	started         uint32 // the capture said what it needs
	size            uint64 // the capture's memory size
	chunk           uint64 // need granularity
	pending         uint64 // blocks still pending
	cursor          uint64 // handler-owned: next block of the background copy

	faults, copied, errs uint64 // counters
}

func (sh *cowShared) at(off uint64) unsafe.Pointer {
	return unsafe.Add(unsafe.Pointer(sh), off)
}

//go:nosplit
func (sh *cowShared) states() []uint32 {
	return unsafe.Slice((*uint32)(sh.at(sh.stateOff)), sh.nblocks)
}

//go:nosplit
func (sh *cowShared) keeps() []byte { return unsafe.Slice((*byte)(sh.at(sh.keepOff)), sh.nblocks) }

//go:nosplit
func (sh *cowShared) needs() []byte { return unsafe.Slice((*byte)(sh.at(sh.needOff)), sh.needLen) }

// cow is a tracker's copy-on-write machinery.
type cow struct {
	region []byte // cowShared and its arrays
	sh     *cowShared
	shadow []byte
	prog   *os.File // read end of sh.prog, through the poller
	ackF   *os.File
	ctlFd  int
	exited chan struct{}

	cmdMu sync.Mutex // one command at a time

	mu   sync.Mutex
	cond *sync.Cond // broadcast on progress
	snap *Snapshot  // the capture under way, until it is done with
}

// newCOW sets up the shared state and the shadow of a mapping and starts
// the handler thread on uffd.
func startCOW(uffd int, mem unsafe.Pointer, limit, page uint64) (*cow, error) {
	base := uint64(uintptr(mem))
	nblocks := (limit + CopyBlock - 1) / CopyBlock
	needLen := (limit + minNeedUnit - 1) / minNeedUnit
	hdr := (uint64(unsafe.Sizeof(cowShared{})) + 7) &^ 7
	stateOff := hdr
	keepOff := stateOff + 4*nblocks
	needOff := keepOff + nblocks
	total := (needOff + needLen + page - 1) &^ (page - 1)
	region, err := unix.Mmap(-1, 0, int(total), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		return nil, err
	}
	shadow, err := unix.Mmap(-1, 0, int(limit), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS|unix.MAP_NORESERVE)
	if err != nil {
		unix.Munmap(region)
		return nil, err
	}
	_ = unix.Madvise(shadow, unix.MADV_HUGEPAGE)
	c := &cow{region: region, shadow: shadow, exited: make(chan struct{}), ctlFd: -1}
	c.cond = sync.NewCond(&c.mu)
	sh := (*cowShared)(unsafe.Pointer(&region[0]))
	c.sh = sh
	*sh = cowShared{uffd: int32(uffd), base: base, limit: limit, page: page, nblocks: nblocks,
		stateOff: stateOff, keepOff: keepOff, needOff: needOff, needLen: needLen,
		baseP: mem, shadowP: unsafe.Pointer(&shadow[0]), ctl: -1, ack: -1, prog: -1}
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

// Idle waits until the last snapshot is copied and its readers are done
// with it, as Freeze does first.
func (t *Tracker) Idle() { t.idle() }

// idle waits for the capture under way, if any, to be done with.
func (t *Tracker) idle() {
	if t.cow != nil {
		t.cow.idle()
	}
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

// command has the handler thread run cmd, and waits for it to be done if
// wait. A command waits for the one before it to be taken.
func (c *cow) command(cmd uint32, wait bool) {
	c.cmdMu.Lock()
	defer c.cmdMu.Unlock()
	sh := c.sh
	c.waitAck(atomic.LoadUint32(&sh.seq))
	seq := atomic.AddUint32(&sh.seq, 1)
	atomic.StoreUint32(&sh.cmd, cmd)
	one := [8]byte{1}
	_, _ = unix.Write(c.ctlFd, one[:])
	if wait {
		c.waitAck(seq)
	}
}

// synced waits until the handler has taken every command given.
func (c *cow) synced() {
	c.cmdMu.Lock()
	defer c.cmdMu.Unlock()
	c.waitAck(atomic.LoadUint32(&c.sh.seq))
}

// waitAck waits until the handler has taken command seq. The caller
// holds cmdMu.
func (c *cow) waitAck(seq uint32) {
	var b [8]byte
	for atomic.LoadUint32(&c.sh.acked) != seq {
		if _, err := c.ackF.Read(b[:]); err != nil {
			return
		}
	}
}

// idle waits until no capture uses the shadow: every pending block
// copied, and the last Snapshot's reader done.
func (c *cow) idle() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for c.snap != nil && !c.snap.finished() {
		c.cond.Wait()
	}
	if c.snap != nil {
		c.snap = nil
		// Give the copies back: the next capture faults fresh pages.
		_ = unix.Madvise(c.shadow, unix.MADV_DONTNEED)
	}
}

func (c *cow) close() {
	c.idle()
	c.command(cmdExit, true)
	<-c.exited
	unix.Close(c.ctlFd)
	c.ackF.Close()
	c.prog.Close() // ends watch
	c.unmap()
}

func (c *cow) unmap() {
	if c.shadow != nil {
		unix.Munmap(c.shadow)
		c.shadow = nil
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
	size    uint64
	started atomic.Bool
	readers atomic.Int32
	done    atomic.Bool
	readAll bool // ReadAll's reader, which Drop ends
}

// Memory returns the snapshot's memory; read a piece only once Wait
// returned for it.
func (s *Snapshot) Memory() []byte { return s.c.shadow[:s.size] }

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
	cs := uint64(chunkSize)
	if cs < minNeedUnit || cs&(cs-1) != 0 || cs > CopyBlock {
		cs = minNeedUnit
	}
	// Only the snapshot's own units: the handler reads no others.
	ns := s.c.sh.needs()[:min(sh.needLen, (s.size+cs-1)/cs)]
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
	sh.chunk = cs
	s.c.command(cmdStart, false)
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
	st := s.c.sh.states()
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

// finished reports whether the snapshot no longer needs the shadow.
func (s *Snapshot) finished() bool {
	return s.done.Load() && atomic.LoadUint64(&s.c.sh.pending) == 0
}

// Freeze protects [0, size) of the mapping, what Collect did not protect
// already, and returns the snapshot of it. Call it while the guest is
// paused, after Collect if tracking is on. The previous snapshot must be
// done with (Done), which Freeze waits for; its copy ends by itself.
func (t *Tracker) Freeze(size uint64) (*Snapshot, error) {
	if t.cow == nil {
		return nil, ErrUnsupported
	}
	t.cow.idle()
	// The last snapshot's start command, if not yet taken, would apply its
	// needs to this one's blocks.
	t.cow.synced()
	t.mu.Lock()
	defer t.mu.Unlock()
	size = min((size+t.page-1)/t.page*t.page, t.limit)
	sh := t.cow.sh
	keep := sh.keeps()
	for b := range keep {
		keep[b] = b2u(t.armed > 0 || t.inProbe(uint64(b)*CopyBlock))
	}
	sh.size = size
	freeze(sh)
	if size > t.armed {
		// Not counted in Protected: tracking does not pay for it.
		protected := t.protected
		err := t.protect(t.armed, size, true)
		t.protected = protected
		if err != nil {
			sh.chunk = 0
			t.cow.command(cmdStart, false) // copies what a write needs, then ends
			return nil, fmt.Errorf("dirty: UFFDIO_WRITEPROTECT: %w", err)
		}
	}
	s := &Snapshot{c: t.cow, size: size}
	t.cow.mu.Lock()
	t.cow.snap = s
	t.cow.mu.Unlock()
	t.copying = s
	return s, nil
}

// freeze makes every block of the capture's memory pending: from now on
// a fault copies its whole block before it lifts the protection. It runs
// with no capture under way (idle) and the guest paused: nothing writes
// to the memory meanwhile, so no fault is in flight and the handler
// touches no block state; the handler's next command (or fault) sees it
// after the syscalls that wake it.
func freeze(sh *cowShared) {
	st := sh.states()
	nb := min(uint64(len(st)), (sh.size+CopyBlock-1)/CopyBlock)
	atomic.StoreUint32(&sh.started, 0)
	atomic.StoreUint64(&sh.pending, nb)
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
