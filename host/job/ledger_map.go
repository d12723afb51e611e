package job

import (
	"encoding/binary"
	"fmt"
	"os"
	"sync/atomic"
	"unsafe"

	"github.com/zeebo/xxh3"
	"golang.org/x/sys/unix"
)

// ledgerMap is the mapped file under both output ledgers (Ledger, and
// jobLedger). Its words are grouped in records, each ending in a checksum
// word, and each kept twice: the second half of the file mirrors the
// first. A writer changes a record's words in the first copy with plain
// atomic stores, then seals it: the checksum, then the second copy, then
// the second copy's checksum. A kill anywhere leaves one copy whole: the
// first if it was sealed, else the second, which holds the record as it
// was at its previous seal, a state the ledger's protocol allows a kill
// in. A flipped bit spoils one copy and the other is used; a record with
// both copies spoiled, or a ledger that is missing or of another run, is
// not trusted, and the resume falls back to the checkpoint's own stream
// positions (see untrusted).
//
// The checksums are seeded with the run's ID, so that a ledger copied
// from another run is not trusted either.
type ledgerMap struct {
	f      *os.File
	mem    []byte
	words  []int64 // the first copy
	mirror []int64 // the second
	seed   uint64
}

// ledgerRec is a record: n value words at off, its checksum at off+n.
type ledgerRec struct{ off, n int }

// maxLedgerRec bounds a record's value words.
const maxLedgerRec = 7

// words are the words of a copy a record needs, checksum included.
func (r ledgerRec) end() int { return r.off + r.n + 1 }

// openLedgerMap maps path with room for copyWords words in each copy.
// existed reports whether the file was there before.
func openLedgerMap(path string, copyWords int, runID string) (m *ledgerMap, existed bool, err error) {
	half := (copyWords*8 + 4095) &^ 4095
	_, serr := os.Stat(path)
	existed = serr == nil
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, false, fmt.Errorf("host: output ledger: %w", err)
	}
	fi, err := f.Stat()
	if err == nil && fi.Size() != int64(2*half) {
		err = f.Truncate(int64(2 * half))
	}
	if err != nil {
		f.Close()
		return nil, false, fmt.Errorf("host: output ledger: %w", err)
	}
	mem, err := unix.Mmap(int(f.Fd()), 0, 2*half, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		f.Close()
		return nil, false, fmt.Errorf("host: output ledger: mmap: %w", err)
	}
	all := unsafe.Slice((*int64)(unsafe.Pointer(&mem[0])), 2*half/8)
	return &ledgerMap{f: f, mem: mem, words: all[:half/8], mirror: all[half/8:], seed: xxh3.HashString(runID)}, existed, nil
}

// sum is the checksum of rec's value words in copy w.
func (m *ledgerMap) sum(w []int64, r ledgerRec) int64 {
	var b [8 * (maxLedgerRec + 1)]byte
	binary.LittleEndian.PutUint64(b[:], uint64(r.off))
	for i := range r.n {
		binary.LittleEndian.PutUint64(b[8+8*i:], uint64(w[r.off+i]))
	}
	return int64(xxh3.HashSeed(b[:8+8*r.n], m.seed))
}

// seal makes rec's changes in the first copy whole: its checksum, then the
// second copy. A record has one writer at a time; the atomic stores of the
// checksums keep the order of the steps (plain stores are not moved across
// them), which is what a kill needs.
func (m *ledgerMap) seal(r ledgerRec) {
	sum := m.sum(m.words, r)
	atomic.StoreInt64(&m.words[r.off+r.n], sum)
	copy(m.mirror[r.off:r.off+r.n], m.words[r.off:r.off+r.n])
	atomic.StoreInt64(&m.mirror[r.off+r.n], sum)
}

// check settles rec when the ledger is opened: the first copy if whole,
// else the second. It reports false if neither is.
func (m *ledgerMap) check(r ledgerRec) bool {
	switch {
	case m.words[r.off+r.n] == m.sum(m.words, r):
		copy(m.mirror[r.off:r.end()], m.words[r.off:r.end()])
	case m.mirror[r.off+r.n] == m.sum(m.mirror, r):
		copy(m.words[r.off:r.end()], m.mirror[r.off:r.end()])
	default:
		return false
	}
	return true
}

// reset zeroes rec's words and seals it.
func (m *ledgerMap) reset(r ledgerRec) {
	clear(m.words[r.off : r.off+r.n])
	m.seal(r)
}

func (m *ledgerMap) close() error {
	err := unix.Munmap(m.mem)
	if cerr := m.f.Close(); err == nil {
		err = cerr
	}
	return err
}

// ledgerTrust is what opening a ledger found: "" if every record is
// whole, else what is wrong, for the warning line.
type ledgerTrust string

// untrusted is the warning of a resume whose ledger cannot be trusted.
func untrustedLedger(path string, what ledgerTrust) string {
	return fmt.Sprintf("the output ledger %s %s: output is printed again from the checkpoint restored (or the start), so what was printed since may appear twice", path, what)
}
