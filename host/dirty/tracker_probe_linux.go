//go:build linux

package dirty

import (
	"bytes"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// Write protection works page by page: the first write to a protected
// huge page splits it into small pages for good (khugepaged does not
// collapse a range registered with userfaultfd, and hardly ever a large
// one). Split memory is slower to use; on virtual machines that shadow
// page tables, much slower (here random writes to 1 GiB of split memory
// ran 100 times slower and hashing it 20 times, bench/RESULTS.md). So a
// guest that rewrites most of its memory must not have all of it
// protected even once: a probe protects a sample of it first, and what
// tracking splits is collapsed back into huge pages when it stops.
const (
	// ProbeBlock is the unit of a probe's sample: a huge page.
	ProbeBlock = 2 << 20
	// ProbeEvery is the share of the memory a probe protects: one block
	// in every ProbeEvery, but at least ProbeMin blocks.
	ProbeEvery = 64
	ProbeMin   = 4
)

// StartProbe protects a sample of [0, size) while tracking is off: one
// block in every ProbeEvery (at least ProbeMin blocks), spread evenly,
// other blocks at each probe. EndProbe then tells how much of the sample
// was written, at a cost to the guest of about 1/ProbeEvery of tracking
// everything. StartProbe does nothing while tracking is on or a probe
// runs.
func (t *Tracker) StartProbe(size uint64) error {
	defer t.Hold()()
	t.mu.Lock()
	defer t.mu.Unlock()
	size = min((size+t.page-1)/t.page*t.page, t.limit)
	if t.armed > 0 || t.probe != nil || size == 0 {
		return nil
	}
	// Blocks are aligned in the address space, where huge pages are.
	first := t.base / ProbeBlock
	last := (t.base + size + ProbeBlock - 1) / ProbeBlock
	n := last - first
	k := min(n, max(ProbeMin, (n+ProbeEvery-1)/ProbeEvery))
	stride := n / k
	var probe [][2]uint64
	for i := range k {
		b := first + t.probes%stride + i*stride
		lo := max(b*ProbeBlock, t.base) - t.base
		hi := min((b+1)*ProbeBlock-t.base, size)
		if lo < hi {
			probe = append(probe, [2]uint64{lo, hi})
		}
	}
	t.probes++
	for i, r := range probe {
		if err := t.protect(r[0], r[1], true); err != nil {
			t.probe = probe[:i]
			return fmt.Errorf("dirty: UFFDIO_WRITEPROTECT: %w", err)
		}
	}
	t.probe = probe
	return nil
}

// EndProbe ends the probe started by StartProbe: it returns how many
// bytes of the sample were written since, and the sample's size (0, 0 if
// no probe ran), and lifts the sample's protection.
func (t *Tracker) EndProbe() (written, sampled uint64, err error) {
	defer t.Hold()()
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.endProbe()
}

func (t *Tracker) endProbe() (written, sampled uint64, err error) {
	probe := t.probe
	t.probe = nil
	for _, r := range probe {
		sampled += r[1] - r[0]
		var w uint64
		if err := t.scan(r[0], r[1], false, 0, func(start, end uint64) { w += end - start }); err != nil {
			return 0, 0, fmt.Errorf("dirty: PAGEMAP_SCAN: %w", err)
		}
		if err := t.unprotect(r[0], r[1]); err != nil {
			return 0, 0, fmt.Errorf("dirty: UFFDIO_WRITEPROTECT: %w", err)
		}
		if w > 0 { // split by a write
			t.restoreHuge(r[0], r[1])
		}
		written += w
	}
	return written, sampled, nil
}

// collapsePiece is the most that one MADV_COLLAPSE call of the collapser
// covers: a protection the guest's pause asks for meanwhile (the kernel
// serializes the two), and Close, wait for no more than one.
const collapsePiece = 2 * ProbeBlock

// restoreHuge has the small pages of [start, end), no longer protected,
// collapsed back into huge pages, by a goroutine of its own: collapsing
// copies each split block (a few ms for four of them here), and the
// caller is most often a capture's pause. Advice only: a block that was
// not a huge page before (some of it never written) stays as it is, and
// one protected again before its turn is left split (the kernel does not
// collapse write-protected pages). The caller holds t.mu.
func (t *Tracker) restoreHuge(start, end uint64) {
	lo := (t.base + start + ProbeBlock - 1) / ProbeBlock * ProbeBlock
	hi := (t.base + end) / ProbeBlock * ProbeBlock
	if !t.collapse || lo >= hi {
		return
	}
	t.huge = append(t.huge, [2]uint64{lo, hi})
	if !t.collapsing {
		t.collapsing = true
		t.collapsed.Add(1)
		go t.collapser()
	}
}

// collapser collapses the ranges restoreHuge queued, a piece at a time,
// until none is left or the tracker closes.
func (t *Tracker) collapser() {
	defer t.collapsed.Done()
	t.mu.Lock()
	defer t.mu.Unlock()
	for t.collapse && len(t.huge) > 0 {
		r := &t.huge[0]
		lo, hi := r[0], min(r[1], r[0]+collapsePiece)
		if r[0] = hi; r[0] >= r[1] {
			t.huge = t.huge[1:]
		}
		t.mu.Unlock()
		_, _, _ = unix.Syscall(unix.SYS_MADVISE, uintptr(lo), uintptr(hi-lo), unix.MADV_COLLAPSE)
		t.mu.Lock()
	}
	t.huge, t.collapsing = nil, false
}

// waitHuge waits until the collapser has collapsed what was queued.
func (t *Tracker) waitHuge() { t.collapsed.Wait() }

// thpNever reports whether the system turned transparent huge pages off.
func thpNever() bool {
	b, err := os.ReadFile("/sys/kernel/mm/transparent_hugepage/enabled")
	return err != nil || bytes.Contains(b, []byte("[never]"))
}
