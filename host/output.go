package host

import "io"

// Output is a guest's stdout or stderr. It counts the guest's position in
// the stream (bytes written so far by the guest, restored from
// checkpoints). A writer that keeps its own account of what was emitted
// before a crash (a GuestWriter, such as host/job's line writer) is
// handed each write with its position and skips what was printed before;
// any other writer gets every byte.
type Output struct {
	w   io.Writer
	pos int64 // guest position: owned by the guest's goroutine
	// stop, if set and true, drops the guest's writes: its memory did not
	// restore (a lazy restore found a damaged chunk), so what it writes
	// may be wrong.
	stop func() bool
}

// NewOutput returns an Output writing to w.
func NewOutput(w io.Writer) *Output { return &Output{w: w} }

// Position is the guest's position in the stream.
func (o *Output) Position() int64 { return o.pos }

// SetPosition sets the guest's position, as restored from a checkpoint.
func (o *Output) SetPosition(p int64) { o.pos = p }

// Writer is the writer the Output writes to.
func (o *Output) Writer() io.Writer { return o.w }

// Write hands p to the writer. It reports len(p) written whatever the
// writer skipped: the guest sees every write succeed as it did in the
// first run.
func (o *Output) Write(p []byte) (int, error) {
	start := o.pos
	o.pos += int64(len(p))
	if o.stop != nil && o.stop() {
		return len(p), nil
	}
	if gw, ok := o.w.(GuestWriter); ok {
		return gw.WriteGuest(p, start)
	}
	if o.w == nil {
		return len(p), nil
	}
	return o.w.Write(p)
}

// GuestWriter is a stream that keeps its own account of what was
// emitted: Output hands it each write with the guest's position of its
// first byte and skips nothing itself.
type GuestWriter interface {
	WriteGuest(p []byte, pos int64) (int, error)
}
