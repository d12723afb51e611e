package host

import (
	"os"
	"sync/atomic"

	"github.com/librahost/librahost/ckpt"
	"github.com/librahost/librahost/host/dirty"
)

// A checkpoint hashes the guest's whole memory to find what changed,
// which bounds an incremental checkpoint's pause by the memory's size
// (about 11 ms for 256 MiB here). With the guest's writes tracked
// (host/dirty) it hashes only the pages written since the last capture.
//
// Tracking costs the guest a fault on the first write to each page after
// a capture (16–60 µs on this virtual machine, about a hundred times what
// hashing the page costs; dirty.Costs measures both), and splits the huge
// pages it writes into small ones. So tracking pays only while a guest
// writes little of its memory between checkpoints: no more than
// 1/dirtyOffRatio of it, and less than the measured costs allow, but up
// to 1/dirtyKeepRatio in any case, for short pauses (limit).
// Before tracking all of it, the worker probes a sample (dirty.StartProbe:
// 1/64 of the memory) for one interval, so that a guest that rewrites all
// its memory pays at most 1/64 of the faults; while tracking is on, a
// guard turns it off as soon as the guest has written more than the limit
// (dirty.SetLimit), so that a probe misled by a quiet interval costs
// little. While the guest writes too much the captures hash everything,
// and the probe is tried again after 1, 2, 4 … up to dirtyMaxBackoff of
// them (back to 1 when tracking pays again).
//
// LIBRAHOST_DIRTY=off turns tracking off (every capture hashes everything).
const (
	dirtyOffRatio   = 8
	dirtyKeepRatio  = 64
	dirtyMaxBackoff = 16
)

var dirtyOff = os.Getenv("LIBRAHOST_DIRTY") == "off"

// dirtyMarks names captures for ckpt.Dirty: unique in the process, never 0.
var dirtyMarks atomic.Uint64

// dirtyTrack is a worker's write tracking, used on the guest's goroutine
// while it is paused.
type dirtyTrack struct {
	t       *dirty.Tracker // nil until the first capture, or if unsupported
	tried   bool           // New was tried
	mark    uint64         // the last capture's hint Mark; 0: it had none
	probing bool           // a probe runs since the last capture
	skip    int            // captures left to hash in full before probing again
	backoff int
}

// dirtyHint returns what was written of the guest's size bytes of memory
// since the last capture, and starts tracking the next interval; nil if
// that is not known (the capture then hashes everything).
func (w *Worker) dirtyHint(size uint64) *ckpt.Dirty {
	d := &w.dirty
	if !d.tried {
		d.tried = true
		if dirtyOff || w.reserved == nil {
			return nil
		}
		t, err := dirty.New(w.reserved.Mapping())
		if err != nil {
			return nil
		}
		d.t = t
	}
	if d.t == nil || size == 0 {
		return nil
	}
	if d.t.Tripped() { // the guard turned tracking off: too much written
		d.off()
		d.mark = 0
		return nil
	}
	if !d.t.Armed() && !d.light(size) {
		d.mark = 0
		return nil
	}
	d.t.SetLimit(d.limit(size))
	hint := &ckpt.Dirty{Since: d.mark, Mark: dirtyMarks.Add(1)}
	var written uint64
	err := d.t.Collect(size, func(start, end uint64) {
		hint.Ranges = append(hint.Ranges, [2]uint64{start, end})
		written += end - start
	})
	if err != nil {
		d.mark = 0
		return nil
	}
	d.mark = hint.Mark
	if hint.Since == 0 { // tracking just started: everything counted as written
		return hint
	}
	if !d.pays(written, size) {
		d.off()
	} else {
		d.backoff = 0
	}
	return hint
}

// light reports, while tracking is off, whether the probe that ran since
// the last capture found the guest writing little enough to track all of
// its memory; if not, it starts the next probe (or counts down to it).
func (d *dirtyTrack) light(size uint64) bool {
	if d.probing {
		d.probing = false
		written, sampled, err := d.t.EndProbe()
		if err == nil && d.pays(written, sampled) {
			return true
		}
		d.off()
		return false
	}
	if d.skip > 0 {
		d.skip--
		return false
	}
	d.probing = d.t.StartProbe(size) == nil
	return false
}

// pays reports whether tracking pays for a guest that wrote written of
// size bytes of memory between two captures: no more than
// 1/dirtyOffRatio of it, and the faults on what it wrote cost less than
// hashing the rest would (dirty.Costs, measured on this machine).
func (d *dirtyTrack) pays(written, size uint64) bool {
	return written <= d.limit(size)
}

// limit is the most a guest may write of size bytes between two captures
// for tracking to pay. Up to 1/dirtyKeepRatio of its memory it is tracked
// whatever the faults cost: its pauses stay short.
func (d *dirtyTrack) limit(size uint64) uint64 {
	limit := size / dirtyOffRatio
	if fault, read := d.t.Costs(); fault > 0 && read > 0 {
		// written·fault ≤ (size−written)·read
		pays := uint64(float64(size) * float64(read) / float64(fault+read))
		limit = min(limit, max(pays, size/dirtyKeepRatio))
	}
	return limit
}

// off stops tracking for the next d.backoff captures, twice as many as
// the last time.
func (d *dirtyTrack) off() {
	if d.t.Disarm() == nil {
		d.backoff = min(max(1, 2*d.backoff), dirtyMaxBackoff)
		d.skip = d.backoff
	}
}

func (d *dirtyTrack) close() {
	if d.t != nil {
		d.t.Close()
	}
}
