package host

import (
	"bytes"
	"encoding/binary"
	"io"
	"os"
	"path/filepath"
	"testing"
)

// flipLedger flips a bit of word w of the first copy, and of the second
// too if both.
func flipLedger(t *testing.T, path string, w int, both bool) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b[8*w+1] ^= 0x10
	if both {
		b[len(b)/2+8*w+1] ^= 0x10
	}
	os.WriteFile(path, b, 0o644)
}

// The single run's ledger: a damaged copy of a record is not noticed, a
// record damaged in both copies, a lost ledger or another run's is not
// trusted and its counts are set from the checkpoint; a ledger of the
// previous format is read; a kill between a store and its seal leaves the
// record as it was.
func TestLedgerDamage(t *testing.T) {
	dir := t.TempDir()
	write := func(name, run string) string {
		p := filepath.Join(dir, name)
		l, err := OpenLedger(p, true, run)
		if err != nil {
			t.Fatal(err)
		}
		var out bytes.Buffer
		o := NewOutput(&out, l.Slot(0))
		o.Write([]byte("one\ntwo\n"))
		l.Close()
		return p
	}
	reopen := func(p, run string) (*Ledger, int64) {
		l, err := OpenLedger(p, false, run)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { l.Close() })
		return l, *l.Slot(0).done()
	}
	for _, tc := range []struct {
		name  string
		edit  func(p string)
		run   string
		trust ledgerTrust
		done  int64 // after Settle at position 4
	}{
		{"whole", func(string) {}, "r", "", 8},
		{"one copy", func(p string) { flipLedger(t, p, ledgerSlots[0].off+1, false) }, "r", "", 8},
		{"one copy's checksum", func(p string) { flipLedger(t, p, ledgerSlots[0].off+2, false) }, "r", "", 8},
		{"both copies", func(p string) { flipLedger(t, p, ledgerSlots[0].off+1, true) }, "r", "is damaged", 4},
		{"header", func(p string) { flipLedger(t, p, 1, true) }, "r", "is damaged or belongs to another run", 4},
		{"another run", func(string) {}, "other", "is damaged or belongs to another run", 4},
		{"missing", func(p string) { os.Remove(p) }, "r", "is missing", 4},
		{"killed before a seal", func(p string) {
			b, _ := os.ReadFile(p)
			binary.NativeEndian.PutUint64(b[8*ledgerSlots[0].off:], 99) // intent stored, not sealed
			os.WriteFile(p, b, 0o644)
		}, "r", "", 8},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := write(tc.name, "r")
			tc.edit(p)
			l, _ := reopen(p, tc.run)
			if l.Trust() != tc.trust {
				t.Fatalf("trust %q, want %q", l.Trust(), tc.trust)
			}
			if settled := l.Settle([2]int64{4, 0}); settled != (tc.trust != "") {
				t.Fatalf("Settle reported %v", settled)
			}
			if got := *l.Slot(0).done(); got != tc.done || *l.Slot(0).intent() != tc.done {
				t.Fatalf("counts %d/%d, want %d", *l.Slot(0).intent(), got, tc.done)
			}
		})
	}
	// The format before checksums: magic, version 1, counts, identities.
	p := filepath.Join(dir, "v1")
	v1 := make([]byte, 4096)
	for i, w := range []int64{ledgerMagic, 1, 8, 8, 3, 3, 7, 70, 100} {
		binary.NativeEndian.PutUint64(v1[8*i:], uint64(w))
	}
	os.WriteFile(p, v1, 0o644)
	l, done := reopen(p, "r")
	if l.Trust() != "" || done != 8 || *l.Slot(1).done() != 3 || l.m.words[ledgerIDs[0].off+1] != 70 {
		t.Fatalf("ledger of the previous format: trust %q, counts %d %d", l.Trust(), done, *l.Slot(1).done())
	}
}

// The job ledger: a rank's counts damaged in both copies are set from its
// checkpoint, so that what it printed since is printed again rather than
// lost; one damaged copy costs nothing.
func TestJobLedgerDamage(t *testing.T) {
	for _, both := range []bool{false, true} {
		dir := t.TempDir()
		path := filepath.Join(dir, "ledger")
		var out bytes.Buffer
		l, err := openJobLedger(path, 2, true, "r")
		if err != nil {
			t.Fatal(err)
		}
		o := newRankOut(l.newStream(0, &out), l, 1, 0, false)
		o.restore(0, nil, false)
		o.writeGuest([]byte("a\nb\nc\n"), 0)
		l.Close()
		flipLedger(t, path, rankRec(1, 0).off+1, both)
		l, err = openJobLedger(path, 2, false, "r")
		if err != nil {
			t.Fatal(err)
		}
		if (l.trust != "") != both {
			t.Fatalf("both %v: trust %q", both, l.trust)
		}
		out.Reset()
		o = newRankOut(l.newStream(0, &out), l, 1, 0, false)
		o.restore(2, nil, false) // the checkpoint was after "a\n"
		o.writeGuest([]byte("b\nc\nd\n"), 2)
		want := "d\n"
		if both {
			want = "b\nc\nd\n"
		}
		if out.String() != want {
			t.Fatalf("both %v: resumed output %q, want %q", both, out.String(), want)
		}
		l.Close()
	}
}

// A job ledger of the format before checksums is read on resume.
func TestJobLedgerPreviousFormat(t *testing.T) {
	p := filepath.Join(t.TempDir(), "ledger")
	v1 := make([]byte, 4096)
	put := func(w int, v int64) { binary.NativeEndian.PutUint64(v1[8*w:], uint64(v)) }
	put(0, jobLedgerMagic)
	put(1, 1)
	put(2, 2)
	put(3+swIntent, 20) // stream 0
	put(3+swDone, 20)
	put(15+(2*1+0)*2, 7) // rank 1, stream 0
	put(15+(2*1+0)*2+1, 7)
	os.WriteFile(p, v1, 0o644)
	l, err := openJobLedger(p, 2, false, "r")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if l.trust != "" || l.stream(0)[swDone] != 20 || l.rank(1, 0)[1] != 7 || l.rank(0, 0)[1] != 0 {
		t.Fatalf("trust %q, stream %v, rank 1 %v", l.trust, l.stream(0), l.rank(1, 0))
	}
	if !l.m.check(rankRec(1, 0)) || !l.m.check(streamRec(0)) {
		t.Fatal("records read from the previous format are not sealed")
	}
}

// BenchmarkLedgerOutput is a guest's write of a line to a stream counted
// in the ledger (the stream itself discards it).
func BenchmarkLedgerOutput(b *testing.B) {
	l, err := OpenLedger(filepath.Join(b.TempDir(), "ledger"), true, "r")
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	o := NewOutput(io.Discard, l.Slot(0))
	line := []byte("a line of output of some forty bytes...\n")
	b.SetBytes(int64(len(line)))
	for b.Loop() {
		o.Write(line)
	}
}
