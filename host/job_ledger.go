package host

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The job ledger is the output ledger of a job of several workers whose
// ranks share the process's stdout and stderr. Like Ledger it is a small
// file mapped shared, so its counts survive a SIGKILL. For each stream it
// counts the bytes written and names the rank whose write was under way;
// for each rank and stream it counts the guest's bytes emitted. A line is
// written at once or not at all, so a resume knows each rank's count
// exactly: from the stream's file size when the stream is a regular file,
// else from whether the write had returned.
const (
	jobLedgerMagic   = 0x53424f4a4152424c // "LBRAJOBS"
	jobLedgerVersion = 1

	jlStream = 3 // words of stream s start at jlStream + s*jlStreamWords
	jlRank   = jlStream + 2*jlStreamWords

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

type jobLedger struct {
	f     *os.File
	mem   []byte
	words []int64
	n     int
}

// openJobLedger maps path for a job of n ranks. With fresh set the counts
// start from zero (a new run); otherwise they continue (a resume).
func openJobLedger(path string, n int, fresh bool) (*jobLedger, error) {
	size := (8*(jlRank+4*n) + 4095) &^ 4095
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("host: output ledger: %w", err)
	}
	if err := f.Truncate(int64(size)); err != nil {
		f.Close()
		return nil, fmt.Errorf("host: output ledger: %w", err)
	}
	mem, err := unix.Mmap(int(f.Fd()), 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("host: output ledger: mmap: %w", err)
	}
	l := &jobLedger{f: f, mem: mem, words: unsafe.Slice((*int64)(unsafe.Pointer(&mem[0])), size/8), n: n}
	if fresh || l.words[0] != jobLedgerMagic || l.words[1] != jobLedgerVersion || l.words[2] != int64(n) {
		clear(mem)
		l.words[0], l.words[1], l.words[2] = jobLedgerMagic, jobLedgerVersion, int64(n)
	}
	return l, nil
}

func (l *jobLedger) stream(s int) []int64 {
	i := jlStream + s*jlStreamWords
	return l.words[i : i+jlStreamWords]
}

// rank returns rank r's intent and done counts of stream s.
func (l *jobLedger) rank(r, s int) []int64 {
	i := jlRank + (2*r+s)*2
	return l.words[i : i+2]
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
			written = id[2]-ss[swStart] > ss[swDone]
		}
		rs := l.rank(int(who)-1, s)
		if written {
			ss[swDone], rs[1] = ss[swIntent], rs[0]
		} else {
			ss[swIntent], rs[0] = ss[swDone], rs[1]
		}
	}
	ss[swWho] = 0
	if oid := fileID(other); id != nil && (oid == nil || oid[0] != id[0] || oid[1] != id[1]) {
		ss[swDev], ss[swIno], ss[swStart] = id[0], id[1], id[2]-ss[swDone]
	} else {
		ss[swDev], ss[swIno], ss[swStart] = 0, 0, 0
	}
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

func (l *jobLedger) Close() error {
	err := unix.Munmap(l.mem)
	if cerr := l.f.Close(); err == nil {
		err = cerr
	}
	return err
}

// jobStream is one of the process's streams shared by the ranks.
type jobStream struct {
	w     io.Writer
	mu    sync.Mutex
	words []int64
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
	prefix    []byte
	buf       []byte // guest bytes not emitted yet: a partial line
	next      int64  // guest position after buf
	lineStart bool
}

func newRankOut(st *jobStream, l *jobLedger, rank, stream int, prefix bool) *rankOut {
	o := &rankOut{st: st, rank: rank, counts: l.rank(rank, stream), lineStart: true}
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
	atomic.StoreInt64(&ss[swWho], int64(o.rank+1))
	atomic.StoreInt64(&o.counts[0], o.counts[1]+guest)
	atomic.StoreInt64(&ss[swIntent], ss[swDone]+int64(len(out)))
	_, err := st.w.Write(out)
	atomic.StoreInt64(&ss[swDone], ss[swIntent])
	atomic.StoreInt64(&o.counts[1], o.counts[0])
	atomic.StoreInt64(&ss[swWho], 0)
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
