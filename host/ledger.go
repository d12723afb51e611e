package host

import (
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The ledger records, for stdout and stderr, how many bytes of the guest's
// output this session has emitted. It is a small file mapped shared into
// memory: every update is a plain memory store that reaches the page cache
// at once, so the counts survive a SIGKILL of the host process without a
// system call per write.
const (
	ledgerMagic = 0x4c49425241444752 // "LIBRADGR"
	ledgerSize  = 4096
)

// LedgerSlot is one stream's counts: Intent is set before a write to the
// real stream, Done after it.
type LedgerSlot struct {
	Intent, Done int64
}

// streamID identifies the file a stream was writing to, so that a resumed
// run writing to the same regular file reads the truth from its size.
type streamID struct {
	Dev, Ino, Start int64
}

type ledgerLayout struct {
	Magic   uint64
	Version uint64
	Slots   [2]LedgerSlot
	IDs     [2]streamID
}

// Ledger is the mapped ledger file of a state directory.
type Ledger struct {
	f    *os.File
	mem  []byte
	data *ledgerLayout
}

// OpenLedger maps path, creating it if needed. With fresh set the counts
// start from zero (a new run); otherwise they continue (a resume).
func OpenLedger(path string, fresh bool) (*Ledger, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("host: output ledger: %w", err)
	}
	if err := f.Truncate(ledgerSize); err != nil {
		f.Close()
		return nil, fmt.Errorf("host: output ledger: %w", err)
	}
	mem, err := unix.Mmap(int(f.Fd()), 0, ledgerSize, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("host: output ledger: mmap: %w", err)
	}
	l := &Ledger{f: f, mem: mem, data: (*ledgerLayout)(unsafe.Pointer(&mem[0]))}
	if fresh || l.data.Magic != ledgerMagic || l.data.Version != 1 {
		clear(mem)
		binary.NativeEndian.PutUint64(mem, ledgerMagic)
		l.data.Version = 1
	}
	return l, nil
}

// Slot returns stream i's counts (0 stdout, 1 stderr).
func (l *Ledger) Slot(i int) *LedgerSlot { return &l.data.Slots[i] }

// Bind ties stream i to f. On a fresh ledger it records f's identity and
// current size; on a resumed one, if f is the same regular file as before,
// the bytes already emitted are read from its size, which is exact even
// if the previous run died in the middle of a write.
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
	id := &l.data.IDs[i]
	slot := &l.data.Slots[i]
	if slot.Done == 0 && slot.Intent == 0 && id.Ino == 0 {
		*id = streamID{Dev: int64(st.Dev), Ino: int64(st.Ino), Start: fi.Size()}
		return
	}
	if id.Ino == int64(st.Ino) && id.Dev == int64(st.Dev) && fi.Size() >= id.Start {
		slot.Done = fi.Size() - id.Start
		slot.Intent = slot.Done
	}
}

// Close unmaps and closes the ledger.
func (l *Ledger) Close() error {
	err := unix.Munmap(l.mem)
	if cerr := l.f.Close(); err == nil {
		err = cerr
	}
	return err
}
