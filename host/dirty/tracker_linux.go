//go:build linux

package dirty

import (
	"errors"
	"fmt"
	"github.com/librahost/librahost/host/uffd"
	"os"
	"sync"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The kernel's interface for PAGEMAP_SCAN (linux/fs.h); userfaultfd's is
// in host/uffd.
const (
	pagemapScan = 0xC0606610 // _IOWR('f', 16, struct pm_scan_arg)

	scanWPMatching  = 1 << 0 // protect the pages found
	scanCheckWPAsyn = 1 << 1 // fail on a range not registered for async protection
	pageIsWritten   = 1 << 1
)

type pmScanArg struct {
	size, flags, start, end, walkEnd, vec, vecLen, maxPages       uint64
	categoryInverted, categoryMask, categoryAnyofMask, returnMask uint64
}

type pageRegion struct{ start, end, categories uint64 }

// Tracker tracks the writes to one mapping. Its methods may be called from
// any goroutine, one at a time.
type Tracker struct {
	mu      sync.Mutex
	uffd    int
	pagemap *os.File
	base    uint64 // the mapping's address
	limit   uint64 // and length
	page    uint64
	armed   uint64 // bytes from the start that are protected; 0: disarmed
	vec     []pageRegion

	probe     [][2]uint64 // the blocks a probe protected, while it runs
	probes    uint64      // probes started: rotates the sample
	protected uint64      // bytes ever protected
	collapse  bool        // restore huge pages where protection split them

	huge       [][2]uint64    // address ranges queued for the collapser (restoreHuge)
	collapsing bool           // the collapser runs
	collapsed  sync.WaitGroup // the collapser

	guardLimit  uint64        // see SetLimit; 0: none
	guardStop   chan struct{} // closed to stop the running guard
	tripped     bool          // the guard turned tracking off
	fault, read time.Duration // see Costs

	// Copy-on-write (NewCOW): faults wait for the handler, which cow
	// runs.
	sync bool
	mem  unsafe.Pointer // the mapping
	cow  *cow
}

// New registers mapping (a whole mmap'd region, page-aligned) for write
// tracking. Nothing is protected before the first Collect.
func New(mapping []byte) (*Tracker, error) {
	return newTracker(mapping, false, 0)
}

// NewCOW is New for copy-on-write captures (Freeze): write faults are
// resolved by a handler thread rather than by the kernel. Writes are
// tracked as with New.
func NewCOW(mapping []byte) (*Tracker, error) {
	return NewCOWPool(mapping, 0)
}

// NewCOWPool is NewCOW with a pool of blocks shadow blocks (0:
// PoolBlocks).
func NewCOWPool(mapping []byte, blocks int) (*Tracker, error) {
	if !cowBuilt {
		return nil, fmt.Errorf("%w: copy-on-write is not built in (-race)", ErrUnsupported)
	}
	return newTracker(mapping, true, uint64(max(blocks, 0)))
}

func newTracker(mapping []byte, sync bool, pool uint64) (*Tracker, error) {
	if len(mapping) == 0 {
		return nil, fmt.Errorf("%w: empty mapping", ErrUnsupported)
	}
	fd, _, errno := unix.Syscall(unix.SYS_USERFAULTFD, unix.O_CLOEXEC|unix.O_NONBLOCK|uffd.UserModeOnly, 0, 0)
	if errno != 0 {
		return nil, fmt.Errorf("%w: userfaultfd: %v", ErrUnsupported, errno)
	}
	t := &Tracker{
		uffd:  int(fd),
		base:  uint64(uintptr(unsafe.Pointer(unsafe.SliceData(mapping)))),
		limit: uint64(len(mapping)),
		page:  uint64(unix.Getpagesize()),
		vec:   make([]pageRegion, 1024),
		// MADV_COLLAPSE ignores the system's THP setting: respect "never".
		collapse: !thpNever(),
		sync:     sync,
		mem:      unsafe.Pointer(unsafe.SliceData(mapping)),
	}
	if err := t.init(sync, pool); err != nil {
		t.Close()
		return nil, err
	}
	return t, nil
}

func (t *Tracker) init(sync bool, pool uint64) error {
	api := uffd.APIArg{API: uffd.API, Features: uffd.FeatureWPAsync | uffd.FeatureWPUnpopulated}
	if sync {
		api.Features = uffd.FeatureWPUnpopulated
	}
	if err := uffd.Ioctl(t.uffd, uffd.IoctlAPI, unsafe.Pointer(&api)); err != nil {
		return fmt.Errorf("%w: UFFDIO_API: %v", ErrUnsupported, err)
	}
	reg := uffd.RegisterArg{Start: t.base, Len: t.limit, Mode: uffd.RegisterModeWP}
	if err := uffd.Ioctl(t.uffd, uffd.IoctlRegister, unsafe.Pointer(&reg)); err != nil {
		return fmt.Errorf("%w: UFFDIO_REGISTER: %v", ErrUnsupported, err)
	}
	f, err := os.Open("/proc/self/pagemap")
	if err != nil {
		return fmt.Errorf("%w: %v", ErrUnsupported, err)
	}
	t.pagemap = f
	// PAGEMAP_SCAN came in Linux 6.7: ask it about one page.
	if err := t.scan(0, t.page, false, 0, func(uint64, uint64) {}); err != nil {
		return fmt.Errorf("%w: PAGEMAP_SCAN: %v", ErrUnsupported, err)
	}
	if sync {
		c, err := startCOW(t.uffd, t.mem, t.limit, t.page, pool)
		if err != nil {
			return fmt.Errorf("%w: %v", ErrUnsupported, err)
		}
		t.cow = c
	}
	t.fault, t.read = measureCosts(t.uffd)
	return nil
}

// Armed reports whether writes are being tracked: Collect was called
// since New or the last Disarm.
func (t *Tracker) Armed() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.armed > 0
}

// Collect calls fn with the byte ranges [start, end), relative to the
// mapping, that were written since the last Collect, up to size bytes,
// and protects them again. If tracking was off (the first call, or after
// Disarm or an error), the whole [0, size) counts as written. Memory that
// grew since the last call counts as written. fn sees page-aligned ranges
// in increasing order. With copy-on-write, call it only while nothing
// writes to the memory (the guest paused): it reads what the handler
// lifted (cowLifted).
func (t *Tracker) Collect(size uint64, fn func(start, end uint64)) error {
	defer t.Hold()()
	t.mu.Lock()
	defer t.mu.Unlock()
	size = min((size+t.page-1)/t.page*t.page, t.limit)
	armed := min(t.armed, size)
	t.armed = 0 // until this call succeeds: the next one reports everything
	if armed == 0 {
		t.probe = nil // protecting everything covers the sample
		t.huge = nil  // and would leave them split again
	}
	if armed > 0 && !t.sync {
		err := t.scan(0, armed, true, 0, func(start, end uint64) {
			t.protected += end - start // protected again
			fn(start, end)
		})
		if err != nil {
			return fmt.Errorf("dirty: PAGEMAP_SCAN: %w", err)
		}
	}
	if armed > 0 && t.sync {
		// Only the asynchronous mode protects as it scans. A
		// copy-on-write tracker knows what it lifted.
		var written [][2]uint64
		add := func(start, end uint64) { written = append(written, [2]uint64{start, end}) }
		if t.cow != nil {
			t.cow.takeLifted(armed, add)
		} else if err := t.scan(0, armed, false, 0, add); err != nil {
			return fmt.Errorf("dirty: PAGEMAP_SCAN: %w", err)
		}
		for _, r := range written {
			if err := t.protect(r[0], r[1], true); err != nil {
				return fmt.Errorf("dirty: UFFDIO_WRITEPROTECT: %w", err)
			}
			fn(r[0], r[1])
		}
	}
	if size > armed {
		if err := t.protect(armed, size, true); err != nil {
			return fmt.Errorf("dirty: UFFDIO_WRITEPROTECT: %w", err)
		}
		fn(armed, size)
	}
	if armed == 0 {
		t.startGuard()
	}
	t.armed = size
	return nil
}

// Disarm stops tracking, and ends a probe: writes no longer fault, and
// the next Collect reports everything. The huge pages that tracking split
// are restored.
func (t *Tracker) Disarm() error {
	defer t.Hold()()
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, _, err := t.endProbe(); err != nil {
		return err
	}
	if t.armed == 0 {
		return nil
	}
	armed := t.armed
	t.armed = 0
	t.stopGuard()
	if err := t.unprotect(0, armed); err != nil {
		return fmt.Errorf("dirty: UFFDIO_WRITEPROTECT: %w", err)
	}
	t.restoreHuge(0, armed)
	return nil
}

// Protected returns how many bytes were write-protected since New, each
// page counted at every protection: at most one write fault each. It is
// what tracking has cost the guest at most.
func (t *Tracker) Protected() uint64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.protected
}

// Close releases the tracker; the kernel drops the protection.
func (t *Tracker) Close() error {
	if t.cow != nil {
		t.cow.close() // waits for the capture under way
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.cow = nil
	if t.pagemap != nil {
		t.pagemap.Close()
		t.pagemap = nil
	}
	if t.uffd >= 0 {
		unix.Close(t.uffd)
		t.uffd = -1
	}
	t.armed = 0
	t.stopGuard()
	t.collapse = false // the collapser stops after its piece under way
	t.mu.Unlock()
	t.collapsed.Wait()
	t.mu.Lock()
	return nil
}

// protect sets (or clears) the write protection of [start, end).
func (t *Tracker) protect(start, end uint64, on bool) error {
	a := uffd.WriteProtectArg{Start: t.base + start, Len: end - start}
	if on {
		a.Mode = uffd.WriteProtectModeWP
		t.protected += end - start
		if t.cow != nil {
			t.cow.clearLifted(start, end)
		}
		return uffd.Ioctl(t.uffd, uffd.IoctlWriteProtect, unsafe.Pointer(&a))
	}
	if t.cow != nil {
		t.cow.markLifted(start, end) // before: see cowLifted
	}
	return uffd.Ioctl(t.uffd, uffd.IoctlWriteProtect, unsafe.Pointer(&a))
}

// scan reports the written pages of [start, end), and protects them again
// if reset. If limit > 0, it stops once it reported more than limit bytes.
func (t *Tracker) scan(start, end uint64, reset bool, limit uint64, fn func(start, end uint64)) error {
	if t.pagemap == nil {
		return errors.New("closed")
	}
	a := pmScanArg{
		size:         uint64(unsafe.Sizeof(pmScanArg{})),
		end:          t.base + end,
		vec:          uint64(uintptr(unsafe.Pointer(&t.vec[0]))),
		vecLen:       uint64(len(t.vec)),
		categoryMask: pageIsWritten,
		returnMask:   pageIsWritten,
	}
	if !t.sync {
		a.flags = scanCheckWPAsyn
	}
	if reset {
		a.flags |= scanWPMatching
	}
	var seen uint64
	for at := t.base + start; at < a.end && (limit == 0 || seen <= limit); {
		a.start = at
		if limit > 0 {
			a.maxPages = (limit-seen)/t.page + 1
		}
		n, _, errno := unix.Syscall(unix.SYS_IOCTL, t.pagemap.Fd(), pagemapScan, uintptr(unsafe.Pointer(&a)))
		if errno != 0 {
			return errno
		}
		for _, r := range t.vec[:n] {
			seen += r.end - r.start
			fn(r.start-t.base, r.end-t.base)
		}
		if a.walkEnd <= at {
			return fmt.Errorf("no progress at %#x", at-t.base)
		}
		at = a.walkEnd
	}
	return nil
}

// Supported reports whether this kernel can track writes (nil), or why
// not.
func Supported() error { return supported(New) }

// SupportedCOW reports whether copy-on-write captures work here (nil), or
// why not.
func SupportedCOW() error { return supported(NewCOW) }

func supported(open func([]byte) (*Tracker, error)) error {
	page := unix.Getpagesize()
	mem, err := unix.Mmap(-1, 0, page, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrUnsupported, err)
	}
	defer unix.Munmap(mem)
	t, err := open(mem)
	if err != nil {
		return err
	}
	return t.Close()
}
