package wasi

import (
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// scanJournalFile is a journal of three epochs: a change between the
// first two, none after.
func scanJournalFile() (b []byte, at []int) {
	b = []byte(journalMagic)
	for _, r := range []*jrec{
		{typ: jrecSeal, epoch: 1},
		{typ: jrecMeta, rel: "f", size: 10},
		{typ: jrecExtent, rel: "f", off: 0, data: []byte("prior contents")},
		{typ: jrecSeal, epoch: 2},
		{typ: jrecSeal, epoch: 3},
	} {
		at = append(at, len(b))
		b = appendFrame(b, r)
	}
	return b, at
}

func TestJournalEpochsDamage(t *testing.T) {
	whole, at := scanJournalFile()
	for _, tc := range []struct {
		name   string
		edit   func(b []byte) []byte
		epochs []uint64
		damage string
	}{
		{"whole", func(b []byte) []byte { return b }, []uint64{1, 2, 3}, ""},
		// A damaged seal holds nothing to undo: fall back one epoch.
		{"newest seal", func(b []byte) []byte { b[at[4]+frameHeaderSize+1] ^= 0x04; return b }, []uint64{1, 2}, "offset " + strconv.Itoa(at[4])},
		{"middle seal", func(b []byte) []byte { b[at[3]+frameHeaderSize+1] ^= 0x01; return b }, []uint64{1, 3}, "offset " + strconv.Itoa(at[3])},
		// Damaged undo data: no epoch sealed before it can be reached.
		{"extent data", func(b []byte) []byte { b[at[2]+frameHeaderSize+6] ^= 0x20; return b }, []uint64{2, 3}, "offset " + strconv.Itoa(at[2])},
		{"length field", func(b []byte) []byte { b[at[1]+1] ^= 0x10; return b }, []uint64{2, 3}, "offset " + strconv.Itoa(at[1])},
		{"checksum of a seal", func(b []byte) []byte { b[at[3]+5] ^= 0x80; return b }, []uint64{1, 3}, "offset " + strconv.Itoa(at[3])},
		// A kill cuts the last frame short: that is no damage.
		{"torn tail", func(b []byte) []byte { return b[:len(b)-2] }, []uint64{1, 2}, ""},
		{"torn header", func(b []byte) []byte { return b[:at[4]+3] }, []uint64{1, 2}, ""},
		{"created, no magic yet", func(b []byte) []byte { return b[:3] }, nil, ""},
		// Zeroes or a bad frame at the end are no kill's: the undo
		// records there are lost.
		{"zeroed tail", func(b []byte) []byte { clear(b[at[2]+frameHeaderSize+2:]); return b }, nil, "offset " + strconv.Itoa(at[2])},
		{"zeroed seals at the end", func(b []byte) []byte { clear(b[at[3]:]); return b }, nil, "offset " + strconv.Itoa(at[3])},
		{"last frame whole, checksum bad", func(b []byte) []byte { b[at[4]+4] ^= 0x01; return b }, []uint64{1, 2}, "offset " + strconv.Itoa(at[4])},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "j")
			os.WriteFile(p, tc.edit(slices.Clone(whole)), 0o600)
			epochs, damage, err := JournalEpochs(p)
			if err != nil || !slices.Equal(epochs, tc.epochs) || (tc.damage == "") != (damage == "") || !strings.Contains(damage, tc.damage) {
				t.Fatalf("epochs %v, damage %q, %v; want %v, %q", epochs, damage, err, tc.epochs, tc.damage)
			}
		})
	}
	p := filepath.Join(t.TempDir(), "j")
	os.WriteFile(p, []byte("not a journal"), 0o600)
	if _, _, err := JournalEpochs(p); err == nil {
		t.Fatal("a file that is no journal was read as one")
	}
}

// RollbackFiles returns the files past a damaged seal to the epoch before
// it, and refuses the epoch of the damaged seal in one line.
func TestRollbackPastDamagedSeal(t *testing.T) {
	dir, state := t.TempDir(), t.TempDir()
	journal := filepath.Join(state, "j")
	os.WriteFile(filepath.Join(dir, "f"), []byte("one"), 0o644)
	cfg := Config{Mounts: []Mount{{HostPath: dir, GuestPath: "/data"}}, Journal: journal}
	h := newHarness(t, cfg)
	if _, err := h.s.CheckpointFiles(1); err != nil {
		t.Fatal(err)
	}
	const iovAt, dataAt = resAt + 256, scratch + 4096
	fd, _ := h.open(3, "f", 0, oflagTrunc, rightsRW)
	h.write(dataAt, []byte("two"))
	if e := h.call("fd_pwrite", uint64(fd), h.iov(iovAt, dataAt, 3), 1, 0, resAt); e != 0 {
		t.Fatalf("write: errno %d", e)
	}
	if _, err := h.s.CheckpointFiles(2); err != nil {
		t.Fatal(err)
	}
	h.s.Close()
	sc, err := scanFrames(mustOpen(t, journal))
	if err != nil || len(sc.ents) == 0 || sc.ents[len(sc.ents)-1].rec.epoch != 2 {
		t.Fatalf("scan: %v", err)
	}
	b, _ := os.ReadFile(journal)
	b[sc.ents[len(sc.ents)-1].at+frameHeaderSize+1] ^= 0x02
	os.WriteFile(journal, b, 0o600)
	s, _ := New(cfg)
	if _, err := s.RollbackFiles(2); err == nil || !strings.Contains(err.Error(), "epoch 2 is not in the journal (damaged at offset") {
		t.Fatalf("rollback to the damaged seal: %v", err)
	}
	s.Close()
	s, _ = New(cfg)
	if warns, err := s.RollbackFiles(1); err != nil || len(warns) > 0 {
		t.Fatalf("rollback past the damaged seal: %v %q", err, warns)
	}
	s.Close()
	if got, _ := os.ReadFile(filepath.Join(dir, "f")); string(got) != "one" {
		t.Fatalf("file after rollback to 1: %q", got)
	}
	if epochs, damage, _ := JournalEpochs(journal); !slices.Equal(epochs, []uint64{1}) || damage != "" {
		t.Fatalf("journal after the rollback: %v %q", epochs, damage)
	}
}

func mustOpen(t *testing.T, p string) *os.File {
	t.Helper()
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// Any journal bytes are scanned without a panic: intact records and damage
// in order, within the file, and the epochs a rollback can serve among the
// seals found.
func FuzzJournalScan(f *testing.F) {
	whole, at := scanJournalFile()
	f.Add(whole)
	for _, i := range []int{at[1] + 1, at[2] + frameHeaderSize + 6, at[4] + frameHeaderSize + 1} {
		b := slices.Clone(whole)
		b[i] ^= 0x10
		f.Add(b)
	}
	f.Add([]byte(journalMagic[:3]))
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, b []byte) {
		p := filepath.Join(dir, "j")
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Skip()
		}
		sc, err := scanFrames(mustOpen(t, p))
		if err != nil {
			return
		}
		last := int64(0)
		for _, e := range sc.ents {
			if e.at < last || e.at+e.n > int64(len(b)) {
				t.Fatalf("record at %d+%d out of order or past the end %d", e.at, e.n, len(b))
			}
			last = e.at + e.n
		}
		for _, d := range sc.damage {
			if d.at >= d.end || d.end > int64(len(b)) {
				t.Fatalf("damage %d..%d past the end %d", d.at, d.end, len(b))
			}
		}
		if sc.end > int64(len(b)) {
			t.Fatalf("end %d past %d", sc.end, len(b))
		}
		epochs, _, err := JournalEpochs(p)
		for _, e := range epochs {
			if err != nil || sc.sealOf(e) < 0 {
				t.Fatalf("epoch %d served without its seal (%v)", e, err)
			}
		}
	})
}
