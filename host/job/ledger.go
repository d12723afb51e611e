package job

import (
	"io"
	"os"
	"sync"
	"syscall"
)

// The job ledger is the output ledger of a job whose
// ranks share the process's stdout and stderr. It is a small
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
	case n == 1 && w[0] == singleLedgerMagic: // a single run's, made by an earlier release
		l.trust = l.fromSingle()
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

// newStream returns stream s of the process, writing to w; a nil ledger
// (a job without a state directory) counts in memory only.
func (l *jobLedger) newStream(s int, w io.Writer) *jobStream {
	if l == nil {
		return &jobStream{w: w, mu: new(sync.Mutex), words: make([]int64, jlStreamWords)}
	}
	return &jobStream{w: w, mu: new(sync.Mutex), words: l.stream(s), l: l, rec: streamRec(s)}
}

// seal seals rec, if there is a ledger.
func (l *jobLedger) seal(rec ledgerRec) {
	if l != nil {
		l.m.seal(rec)
	}
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
