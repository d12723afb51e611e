package host

import (
	"os"
	"sync/atomic"
	"time"

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
//
// Where the kernel lets a handler thread resolve write faults
// (dirty.NewCOW), a capture is copy-on-write: the guest stops only while
// its memory is protected (what tracking left unprotected, or all of it)
// and its globals and host state are taken; the store then hashes and
// reads the snapshot while the guest runs on (ckpt.Dirty.Frozen), and a
// write to a block not yet read has the handler copy it first, into a
// bounded pool (host/dirty). Tracking
// works the same on top. Where it cannot (or with LIBRAHOST_COW=off, or
// in a -race build), the stop-and-copy capture hashes and copies while
// the guest is paused.
//
// A memory smaller than cowMinMemory is captured stop-and-copy all the
// same: hashing and copying it while paused takes a few milliseconds,
// about what the copy-on-write machinery (protecting it, the faults, the
// handler's copies into the pool) costs
// in CPU on top of the same copy, capture after capture; the guest that
// rewrites all of a small memory between checkpoints (heat's workers)
// paid that CPU for a pause shorter by as little.
const (
	dirtyOffRatio   = 8
	dirtyKeepRatio  = 64
	dirtyMaxBackoff = 16
)

// cowMinMemory is the least guest memory captured copy-on-write; a
// variable for the tests.
var cowMinMemory = 16 << 20

// cowPoolBlocks is the size of a worker's pool of shadow blocks
// (dirty.NewCOWPool; 0: dirty.PoolBlocks); a variable for the tests.
var cowPoolBlocks = 0

var (
	dirtyOff = os.Getenv("LIBRAHOST_DIRTY") == "off"
	cowOff   = os.Getenv("LIBRAHOST_COW") == "off"
)

// dirtyMarks names captures for ckpt.Dirty: unique in the process, never 0.
var dirtyMarks atomic.Uint64

// dirtyTrack is a worker's write tracking, used on the guest's goroutine
// while it is paused.
type dirtyTrack struct {
	t       *dirty.Tracker // nil until the first capture, or if unsupported
	cow     bool           // t is a copy-on-write tracker (dirty.NewCOW)
	snap    *dirty.Snapshot
	waited  time.Duration // the last freeze's wait for the capture before
	tried   bool          // New was tried
	mark    uint64        // the last capture's hint Mark; 0: it had none
	probing bool          // a probe runs since the last capture
	skip    int           // captures left to hash in full before probing again
	backoff int
}

// openDirty sets up write tracking and copy-on-write captures, once: at
// the start, so that the first checkpoint's pause does not pay for it
// (dirty.Costs measures faults).
func (w *Worker) openDirty() {
	d := &w.dirty
	if d.tried {
		return
	}
	d.tried = true
	if w.reserved == nil || w.kind == KindPlain {
		return
	}
	if !cowOff {
		if t, err := dirty.NewCOWPool(w.reserved.Mapping(), cowPoolBlocks); err == nil {
			d.t, d.cow = t, true
			if w.counterWord != nil {
				t.ZeroWhenFull(w.counterWord)
			}
		}
	}
	if d.t == nil && !dirtyOff {
		if t, err := dirty.New(w.reserved.Mapping()); err == nil {
			d.t = t
		}
	}
}

// dirtyHint returns what was written of the guest's size bytes of memory
// since the last capture, and starts tracking the next interval; nil if
// that is not known (the capture then hashes everything).
func (w *Worker) dirtyHint(size uint64) *ckpt.Dirty {
	d := &w.dirty
	w.openDirty()
	if d.t == nil || size == 0 || dirtyOff {
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
		// written·fault/unit ≤ (size−written)·read/page: a fault lifts
		// the protection of a unit (a page, or dirty.TrackUnit with
		// copy-on-write), a read hashes a page.
		unit, page := d.t.FaultUnit()
		f := float64(fault) / float64(unit)
		r := float64(read) / float64(page)
		pays := uint64(float64(size) * r / (f + r))
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

// freeze returns the memory and hint to capture for the guest's memory
// data, paused: with copy-on-write, a snapshot of data that is read
// while the guest runs on (thaw ends the pause).
func (w *Worker) freeze(data []byte) ([]byte, *ckpt.Dirty) {
	d := &w.dirty
	d.waited = 0
	w.openDirty()
	if d.cow {
		// The capture before may still be read: its handler lifts no
		// protection from Collect to Freeze. Two may be under way.
		d.t.Ready()
		defer d.t.Hold()()
	}
	hint := w.dirtyHint(uint64(len(data)))
	if !d.cow || len(data) == 0 || len(data) < cowMinMemory {
		return data, hint
	}
	// The capture before may still be read and written meanwhile.
	snap, err := d.t.Freeze(uint64(len(data)))
	// Left out of the pause, as the drivers' own waits for the write
	// before are: Ready waits only while two captures are under way.
	d.waited = d.t.Waited()
	if err != nil {
		return data, hint // the stop-and-copy capture
	}
	if hint == nil {
		hint = &ckpt.Dirty{}
	}
	hint.Frozen = snap
	d.snap = snap
	return snap.Memory(), hint
}

// Bytes returns the guest's memory as Memory holds it (with copy-on-write
// the paused guest's memory, the snapshot's until the pause ends); valid
// during OnPause. Call it before handing Memory to a store.
func (c *Capture) Bytes() []byte {
	if c.snap == nil {
		return c.Memory
	}
	return c.snap.ReadAll()
}

// thaw ends a pause: a snapshot that OnPause did not hand to the store
// is dropped.
func (w *Worker) thaw() {
	if s := w.dirty.snap; s != nil {
		w.dirty.snap = nil
		s.Drop()
	}
}

// throttle has the guest, at its preemption call, wait while a capture's
// copy-on-write pool is full, until the capture has read what the pool
// holds (dirty.Tracker.Throttle): the pool then stays within its size.
func (w *Worker) throttle() {
	if d := &w.dirty; d.cow {
		d.t.Throttle()
	}
}

// CaptureKind names the capture mechanism in the verbose lines.
func CaptureKind(cow bool) string {
	if cow {
		return "copy-on-write"
	}
	return "stop-and-copy"
}

// releaseMem lifts the copy-on-write protection of guest memory b before
// the kernel writes into it (wasi.Config.Release).
func (w *Worker) releaseMem(b []byte) {
	if w.dirty.cow {
		dirty.Release(b)
	}
}

func (d *dirtyTrack) close() {
	if d.t != nil {
		d.t.Close()
	}
}

// CaptureWaits is how long the guest has stood in all for copy-on-write
// captures beyond their pauses: at its preemption calls, waiting for the
// readers to give shadow blocks back (throttle), and in its write faults
// while the handler copied a block or lifted a protection. Tracking's
// faults count too: they are what tracking costs the guest.
func (w *Worker) CaptureWaits() time.Duration {
	if w == nil {
		return 0
	}
	if d := &w.dirty; d.cow {
		st := d.t.Pool()
		return st.Throttled + st.Faulted
	}
	return 0
}
