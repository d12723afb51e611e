package host

import (
	"io"
	"os"
	"syscall"
)

// The ledger records, for stdout and stderr, how many bytes of the guest's
// output this session has emitted. It is a small file mapped shared into
// memory: every update is a plain memory store that reaches the page cache
// at once, so the counts survive a SIGKILL of the host process without a
// system call per write. Its records are checksummed and kept twice
// (ledgerMap).
const (
	ledgerMagic   = 0x4c49425241444752 // "LIBRADGR"
	ledgerVersion = 2
)

// Records of a Ledger: the header (magic, version), then by stream its
// counts (intent, done) and the identity of the file it wrote to (dev,
// ino, start).
var (
	ledgerHeader = ledgerRec{0, 2}
	ledgerSlots  = [2]ledgerRec{{3, 2}, {6, 2}}
	ledgerIDs    = [2]ledgerRec{{9, 3}, {13, 3}}
)

const ledgerWords = 17

// LedgerSlot is one stream's counts: Intent is set before a write to the
// real stream, Done after it; each change is sealed.
type LedgerSlot struct {
	l   *Ledger
	rec ledgerRec
}

func (s *LedgerSlot) intent() *int64 { return &s.l.m.words[s.rec.off] }
func (s *LedgerSlot) done() *int64   { return &s.l.m.words[s.rec.off+1] }
func (s *LedgerSlot) seal()          { s.l.m.seal(s.rec) }

// Ledger is the mapped ledger file of a state directory.
type Ledger struct {
	path  string
	m     *ledgerMap
	slots [2]LedgerSlot
	// bad says, by stream, that its counts cannot be trusted: the resume
	// sets them from the checkpoint (Settle).
	bad   [2]bool
	trust ledgerTrust
}

// OpenLedger maps path, creating it if needed. With fresh set the counts
// start from zero (a new run); otherwise they continue (a resume), as far
// as they can be trusted: Trust says what is wrong.
func OpenLedger(path string, fresh bool, runID string) (*Ledger, error) {
	m, existed, err := openLedgerMap(path, ledgerWords, runID)
	if err != nil {
		return nil, err
	}
	l := &Ledger{path: path, m: m}
	for i := range l.slots {
		l.slots[i] = LedgerSlot{l: l, rec: ledgerSlots[i]}
	}
	w := m.words
	switch {
	case fresh:
	case !existed:
		l.trust = "is missing"
	case w[0] == ledgerMagic && w[1] == 1: // the previous format, unprotected
		var v1 [10]int64
		copy(v1[:], w[2:12])
		l.init()
		copy(w[3:5], v1[0:2])
		copy(w[6:8], v1[2:4])
		copy(w[9:12], v1[4:7])
		copy(w[13:16], v1[7:10])
		for _, r := range append(ledgerSlots[:], ledgerIDs[:]...) {
			m.seal(r)
		}
		return l, nil
	case !m.check(ledgerHeader) || w[0] != ledgerMagic || w[1] != ledgerVersion:
		l.trust = "is damaged or belongs to another run"
	default:
		for i := range 2 {
			if !m.check(ledgerSlots[i]) {
				l.bad[i], l.trust = true, "is damaged"
			}
			if !m.check(ledgerIDs[i]) {
				m.reset(ledgerIDs[i])
			}
		}
		return l, nil
	}
	if l.trust != "" {
		l.bad = [2]bool{true, true}
	}
	l.init()
	return l, nil
}

// init starts the ledger anew.
func (l *Ledger) init() {
	clear(l.m.words)
	l.m.words[0], l.m.words[1] = ledgerMagic, ledgerVersion
	l.m.seal(ledgerHeader)
	for i := range 2 {
		l.m.seal(ledgerSlots[i])
		l.m.seal(ledgerIDs[i])
	}
}

// Trust is "" when the counts of a resumed ledger are whole, else what is
// wrong with it.
func (l *Ledger) Trust() ledgerTrust { return l.trust }

// Slot returns stream i's counts (0 stdout, 1 stderr).
func (l *Ledger) Slot(i int) *LedgerSlot { return &l.slots[i] }

// Bind ties stream i to f. On a fresh ledger it records f's identity and
// current size; on a resumed one, if f is the same regular file as before,
// the bytes already emitted are read from its size, which is exact even
// if the previous run died in the middle of a write (or its counts were
// damaged).
func (l *Ledger) Bind(i int, w io.Writer) {
	f, ok := w.(*os.File)
	if !ok {
		return
	}
	fi, err := f.Stat()
	if err != nil || !fi.Mode().IsRegular() {
		return
	}
	st, ok := fi.Sys().(*syscall.Stat_t) // what os.File.Stat gives, not unix.Stat_t
	if !ok {
		return
	}
	id := l.m.words[ledgerIDs[i].off:]
	slot := l.m.words[ledgerSlots[i].off:]
	if slot[0] == 0 && slot[1] == 0 && id[1] == 0 && !l.bad[i] {
		id[0], id[1], id[2] = int64(st.Dev), int64(st.Ino), fi.Size()
		l.m.seal(ledgerIDs[i])
		return
	}
	if id[1] == int64(st.Ino) && id[0] == int64(st.Dev) && fi.Size() >= id[2] && id[1] != 0 {
		slot[1] = fi.Size() - id[2]
		slot[0] = slot[1]
		l.m.seal(ledgerSlots[i])
		l.bad[i] = false
	}
}

// Settle sets the counts of each stream that could not be trusted to pos,
// the guest's position in it at the checkpoint restored (0 if none): what
// follows is printed again. It reports whether any was.
func (l *Ledger) Settle(pos [2]int64) bool {
	any := false
	for i, bad := range l.bad {
		if bad {
			slot := l.m.words[ledgerSlots[i].off:]
			slot[0], slot[1] = pos[i], pos[i]
			l.m.seal(ledgerSlots[i])
			l.bad[i], any = false, true
		}
	}
	return any
}

// Close unmaps and closes the ledger.
func (l *Ledger) Close() error { return l.m.close() }
