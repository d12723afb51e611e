package job

import (
	"bytes"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
)

// jobStream is one of the process's streams shared by the ranks.
type jobStream struct {
	w     io.Writer
	mu    *sync.Mutex // shared by every writer to w
	words []int64
	l     *jobLedger
	rec   ledgerRec
}

// rankOut is one rank's stdout or stderr: it writes whole lines to the
// stream the ranks share (each started with "[rank] " if asked; a job of
// one unprefixed writes its bytes as they come), and counts in the
// ledger the guest bytes emitted, so that a resumed rank skips what was
// printed before and prints what was not, once. host.Output hands it
// every write with its position (host.GuestWriter). Without a ledger the
// counts are kept in memory.
type rankOut struct {
	st        *jobStream
	rank      int
	counts    []int64 // intent, done: guest bytes emitted
	l         *jobLedger
	rec       ledgerRec
	bad       bool // counts not to be trusted: set from the checkpoint
	prefix    []byte
	buf       []byte // guest bytes not emitted yet: a partial line
	next      int64  // guest position after buf
	lineStart bool
	whole     bool // hold a partial line back until it ends
}

func newRankOut(st *jobStream, l *jobLedger, rank, stream int, prefix, whole bool) *rankOut {
	o := &rankOut{st: st, rank: rank, counts: make([]int64, 2), lineStart: true, l: l, whole: whole}
	if l != nil {
		o.counts, o.rec, o.bad = l.rank(rank, stream), rankRec(rank, stream), l.badRank[2*rank+stream]
	}
	if prefix {
		o.prefix = []byte(fmt.Sprintf("[%d] ", rank))
	}
	o.next = o.counts[1]
	return o
}

// WriteGuest takes the guest's bytes p at position pos; those before what
// the rank emitted or holds already are dropped.
func (o *rankOut) WriteGuest(p []byte, pos int64) (int, error) {
	n := len(p)
	end := pos + int64(n)
	if pos < o.next {
		// Bytes printed before a restore, written again: the last of
		// them says whether the next byte starts a line.
		if end >= o.next {
			o.lineStart = p[o.next-pos-1] == '\n'
		}
		if end <= o.next {
			return n, nil
		}
		p = p[o.next-pos:]
	}
	o.buf = append(o.buf, p...)
	o.next = end
	i := len(o.buf) - 1
	if o.whole {
		i = bytes.LastIndexByte(o.buf, '\n')
	}
	if i < 0 && len(o.buf) < 64<<10 {
		return n, nil
	}
	if i < 0 {
		i = len(o.buf) - 1
	}
	err := o.emit(o.buf[:i+1])
	o.buf = append(o.buf[:0], o.buf[i+1:]...)
	return n, err
}

// Flush writes out an unterminated last line.
func (o *rankOut) Flush() error {
	if len(o.buf) == 0 {
		return nil
	}
	err := o.emit(o.buf)
	o.buf = o.buf[:0]
	return err
}

func (o *rankOut) emit(g []byte) error {
	if len(g) == 0 {
		return nil
	}
	guest := int64(len(g))
	out := g
	if o.prefix != nil {
		out = nil
		for len(g) > 0 {
			line := g
			if i := bytes.IndexByte(g, '\n'); i >= 0 {
				line = g[:i+1]
			}
			if o.lineStart {
				out = append(out, o.prefix...)
			}
			out = append(out, line...)
			o.lineStart = line[len(line)-1] == '\n'
			g = g[len(line):]
		}
	} else {
		o.lineStart = g[len(g)-1] == '\n'
	}
	st := o.st
	st.mu.Lock()
	defer st.mu.Unlock()
	ss := st.words
	// who, then the intents; the write; then the counts, then who again:
	// jobLedger.bind settles a write cut short anywhere in between.
	// Each step is sealed before the next (ledgerMap).
	m := o.l
	atomic.StoreInt64(&o.counts[0], o.counts[1]+guest)
	m.seal(o.rec)
	atomic.StoreInt64(&ss[swWho], int64(o.rank+1))
	atomic.StoreInt64(&ss[swIntent], ss[swDone]+int64(len(out)))
	m.seal(st.rec)
	_, err := st.w.Write(out)
	atomic.StoreInt64(&ss[swDone], ss[swIntent])
	m.seal(st.rec)
	atomic.StoreInt64(&o.counts[1], o.counts[0])
	m.seal(o.rec)
	atomic.StoreInt64(&ss[swWho], 0)
	m.seal(st.rec)
	return err
}

// tail returns the guest bytes held (a partial line), for a checkpoint.
func (o *rankOut) tail() []byte { return bytes.Clone(o.buf) }

// restore sets the rank's place after a restore to a checkpoint at guest
// position pos that held tail (the guest bytes before pos not emitted
// then; midLine: what was emitted before them ended inside a line). What
// was emitted since is not emitted again; what was held and not emitted
// is. It reports bytes lost for good (a ledger that does not belong to the
// checkpoints).
func (o *rankOut) restore(pos int64, tail []byte, midLine bool) (lost int64) {
	if o.bad { // printed again from the checkpoint on
		from := pos - int64(len(tail))
		o.counts[0], o.counts[1], o.bad = from, from, false
	}
	defer o.l.seal(o.rec)
	done := o.counts[1]
	o.lineStart = true // past pos, writeGuest learns it from the bytes written again
	switch from := pos - int64(len(tail)); {
	case done >= pos:
		o.buf, o.next = o.buf[:0], done
	case done >= from:
		o.lineStart = !midLine
		if done > from {
			o.lineStart = tail[done-from-1] == '\n'
		}
		o.buf, o.next = append(o.buf[:0], tail[done-from:]...), pos
	default:
		lost = from - done
		o.counts[0], o.counts[1] = from, from
		o.buf, o.next = append(o.buf[:0], tail...), pos
	}
	return lost
}

// Write appends p after what the rank holds (host.Output uses WriteGuest).
func (o *rankOut) Write(p []byte) (int, error) { return o.WriteGuest(p, o.next) }

// NewLineWriter returns a writer of rank's output to w, which it shares
// with the other ranks' writers under mu: it writes whole lines only (a
// line longer than 64 KiB in parts, prefixed once), each started with
// "[rank] " if prefix is set. Flush writes out an unterminated last line.
// A nil w gives a nil writer.
func NewLineWriter(w io.Writer, mu *sync.Mutex, rank int, prefix bool) io.Writer {
	if w == nil {
		return nil
	}
	return newRankOut(&jobStream{w: w, mu: mu, words: make([]int64, jlStreamWords)}, nil, rank, 0, prefix, true)
}
