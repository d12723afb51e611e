package host

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
)

// The job ledger is the output ledger of a job of several workers whose
// ranks share the process's stdout and stderr. Like Ledger it is a small
// file mapped shared, so its counts survive a SIGKILL, with its records
// checksummed and kept twice (ledgerMap). For each stream it counts the
// bytes written and names the rank whose write was under way; for each
// rank and stream it counts the guest's bytes emitted. A line is written
// at once or not at all, so a resume knows each rank's count exactly: from
// the stream's file size when the stream is a regular file, else from
// whether the write had returned.
const (
	jobLedgerMagic   = 0x53424f4a4152424c // "LBRAJOBS"
	jobLedgerVersion = 2

	jlStream = 4 // the record of stream s is at jlStream + s*(jlStreamWords+1)
	jlRank   = jlStream + 2*(jlStreamWords+1)

	jlStreamWords = 6 // intent, done, dev, ino, start, who (rank+1 writing)
)

// Words of a stream.
const (
	swIntent = iota
	swDone
	swDev
	swIno
	swStart
	swWho
)

var jlHeader = ledgerRec{0, 3} // magic, version, n

type jobLedger struct {
	m     *ledgerMap
	words []int64
	n     int
	// What a resume could not trust: the stream records are started
	// anew, the ranks' counts are set from their checkpoints.
	trust     ledgerTrust
	badStream [2]bool
	badRank   []bool // by 2*rank+stream
}

func streamRec(s int) ledgerRec  { return ledgerRec{jlStream + s*(jlStreamWords+1), jlStreamWords} }
func rankRec(r, s int) ledgerRec { return ledgerRec{jlRank + (2*r+s)*3, 2} }

// openJobLedger maps path for a job of n ranks. With fresh set the counts
// start from zero (a new run); otherwise they continue (a resume), as far
// as they can be trusted.
func openJobLedger(path string, n int, fresh bool, runID string) (*jobLedger, error) {
	m, existed, err := openLedgerMap(path, jlRank+6*n, runID)
	if err != nil {
		return nil, err
	}
	l := &jobLedger{m: m, words: m.words, n: n, badRank: make([]bool, 2*n)}
	w := l.words
	switch {
	case fresh:
	case !existed:
		l.trust = "is missing"
	case w[0] == jobLedgerMagic && w[1] == 1 && w[2] == int64(n): // the previous format, unprotected
		v1 := append([]int64(nil), w[:15+4*n]...)
		l.init()
		for s := range 2 {
			copy(l.stream(s), v1[3+s*6:3+s*6+6])
			m.seal(streamRec(s))
			for r := range n {
				copy(l.rank(r, s), v1[15+(2*r+s)*2:][:2])
				m.seal(rankRec(r, s))
			}
		}
		return l, nil
	case !m.check(jlHeader) || w[0] != jobLedgerMagic || w[1] != jobLedgerVersion || w[2] != int64(n):
		l.trust = "is damaged or belongs to another run"
	default:
		for s := range 2 {
			if !m.check(streamRec(s)) {
				l.badStream[s], l.trust = true, "is damaged"
				m.reset(streamRec(s))
			}
			for r := range n {
				if !m.check(rankRec(r, s)) {
					l.badRank[2*r+s], l.trust = true, "is damaged"
				}
			}
		}
		return l, nil
	}
	l.init()
	if l.trust != "" {
		for i := range l.badRank {
			l.badRank[i] = true
		}
	}
	return l, nil
}

// init starts the ledger anew.
func (l *jobLedger) init() {
	clear(l.words)
	l.words[0], l.words[1], l.words[2] = jobLedgerMagic, jobLedgerVersion, int64(l.n)
	l.m.seal(jlHeader)
	for s := range 2 {
		l.m.seal(streamRec(s))
		for r := range l.n {
			l.m.seal(rankRec(r, s))
		}
	}
}

func (l *jobLedger) stream(s int) []int64 {
	r := streamRec(s)
	return l.words[r.off : r.off+r.n]
}

// rank returns rank r's intent and done counts of stream s.
func (l *jobLedger) rank(r, s int) []int64 {
	rec := rankRec(r, s)
	return l.words[rec.off : rec.off+rec.n]
}

// newStream returns stream s of the process, writing to w.
func (l *jobLedger) newStream(s int, w io.Writer) *jobStream {
	return &jobStream{w: w, words: l.stream(s), l: l, rec: streamRec(s)}
}

// bind ties stream s to w at the start of a process: it settles the write
// that was under way when the previous process died, then records w's
// identity, so that the next resume can settle it from w's size. other is
// the other stream: the same file for both gives no exact count.
func (l *jobLedger) bind(s int, w, other io.Writer) {
	ss := l.stream(s)
	id := fileID(w)
	if who := ss[swWho]; who > 0 && int(who) <= l.n {
		written := ss[swDone] == ss[swIntent]
		if id != nil && id[0] == ss[swDev] && id[1] == ss[swIno] && ss[swIno] != 0 {
			written = id[2]-ss[swStart] >= ss[swIntent]
		}
		rs := l.rank(int(who)-1, s)
		if written {
			ss[swDone], rs[1] = ss[swIntent], rs[0]
		} else {
			ss[swIntent], rs[0] = ss[swDone], rs[1]
		}
		l.m.seal(rankRec(int(who)-1, s))
	}
	ss[swWho] = 0
	if oid := fileID(other); id != nil && (oid == nil || oid[0] != id[0] || oid[1] != id[1]) {
		ss[swDev], ss[swIno], ss[swStart] = id[0], id[1], id[2]-ss[swDone]
	} else {
		ss[swDev], ss[swIno], ss[swStart] = 0, 0, 0
	}
	l.m.seal(streamRec(s))
}

// fileID is dev, ino and size of w if it is a regular file.
func fileID(w io.Writer) []int64 {
	f, ok := w.(*os.File)
	if !ok {
		return nil
	}
	fi, err := f.Stat()
	if err != nil || !fi.Mode().IsRegular() {
		return nil
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return nil
	}
	return []int64{int64(st.Dev), int64(st.Ino), fi.Size()}
}

func (l *jobLedger) Close() error { return l.m.close() }

// jobStream is one of the process's streams shared by the ranks.
type jobStream struct {
	w     io.Writer
	mu    sync.Mutex
	words []int64
	l     *jobLedger
	rec   ledgerRec
}

// rankOut is one rank's stdout or stderr in a checkpointed job: it writes
// whole lines to the shared stream (each started with "[rank] " if asked)
// and counts in the ledger the guest bytes emitted, so that a resumed rank
// skips what was printed before and prints what was not, once. Output
// hands it every write with its position (positionedWriter).
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
}

func newRankOut(st *jobStream, l *jobLedger, rank, stream int, prefix bool) *rankOut {
	o := &rankOut{st: st, rank: rank, counts: l.rank(rank, stream), lineStart: true,
		l: l, rec: rankRec(rank, stream), bad: l.badRank[2*rank+stream]}
	if prefix {
		o.prefix = []byte(fmt.Sprintf("[%d] ", rank))
	}
	o.next = o.counts[1]
	return o
}

// writeGuest takes the guest's bytes p at position pos; those before what the
// rank emitted or holds already are dropped.
func (o *rankOut) writeGuest(p []byte, pos int64) (int, error) {
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
	i := bytes.LastIndexByte(o.buf, '\n')
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
	m := o.l.m
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
	defer o.l.m.seal(o.rec)
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

// Write appends p after what the rank holds (Output uses writeGuest).
func (o *rankOut) Write(p []byte) (int, error) { return o.writeGuest(p, o.next) }
