package host

import (
	"io"
	"sync/atomic"
)

// Output is a guest's stdout or stderr. It counts the guest's position in
// the stream (bytes written so far by the guest, restored from checkpoints)
// and drops the bytes that a run before a crash already emitted, so a
// resumed deterministic program prints each byte once.
type Output struct {
	w   io.Writer
	pos int64 // guest position: owned by the guest's goroutine

	// emitted is the stream's count of bytes written to w across every run
	// of the session; it lives in the ledger (a shared mapping) so that it
	// survives a SIGKILL of the host process.
	emitted *int64
	intent  *int64
	slot    *LedgerSlot // seals the counts; nil without a ledger
	local   [2]int64    // used when there is no ledger
}

// NewOutput returns an Output writing to w. With a nil ledger slot the
// emitted count lives in memory only.
func NewOutput(w io.Writer, slot *LedgerSlot) *Output {
	o := &Output{w: w}
	if slot != nil {
		o.intent, o.emitted, o.slot = slot.intent(), slot.done(), slot
	} else {
		o.intent, o.emitted = &o.local[0], &o.local[1]
	}
	return o
}

// Position is the guest's position in the stream.
func (o *Output) Position() int64 { return o.pos }

// SetPosition sets the guest's position, as restored from a checkpoint.
func (o *Output) SetPosition(p int64) { o.pos = p }

// Write writes the part of p that was not emitted before. It reports
// len(p) written whatever it skipped: the guest sees every write succeed
// as it did in the first run.
func (o *Output) Write(p []byte) (int, error) {
	if pw, ok := o.w.(positionedWriter); ok {
		start := o.pos
		o.pos += int64(len(p))
		return pw.writeGuest(p, start)
	}
	start := o.pos
	end := start + int64(len(p))
	o.pos = end
	done := atomic.LoadInt64(o.emitted)
	if end <= done || o.w == nil {
		return len(p), nil
	}
	skip := int64(0)
	if done > start {
		skip = done - start
	}
	atomic.StoreInt64(o.intent, end)
	o.seal()
	n, err := o.w.Write(p[skip:])
	atomic.StoreInt64(o.emitted, start+skip+int64(n))
	o.seal()
	if err != nil {
		return int(skip) + n, err
	}
	return len(p), nil
}

func (o *Output) seal() {
	if o.slot != nil {
		o.slot.seal()
	}
}

// positionedWriter is a stream that keeps its own account of what was
// emitted (a job's rank output): Output hands it each write with the
// guest's position of its first byte and skips nothing itself.
type positionedWriter interface {
	writeGuest(p []byte, pos int64) (int, error)
}
