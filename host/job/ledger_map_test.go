package job

import (
	"bytes"
	"encoding/binary"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/librahost/librahost/host"
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

// The ledger of a single run made by an earlier release is read into a
// job ledger of one: its counts carry over; a damaged copy of a record is
// not noticed; a record damaged in both copies, or a header damaged or of
// another run, is not trusted (the counts are then set from the
// checkpoint); the format before checksums is read too.
func TestSingleLedger(t *testing.T) {
	dir := t.TempDir()
	// write makes a single run's ledger (version 2) that emitted 8 bytes
	// to stdout and 3 to stderr.
	write := func(name string) string {
		p := filepath.Join(dir, name)
		m, _, err := openLedgerMap(p, 17, "r")
		if err != nil {
			t.Fatal(err)
		}
		copy(m.words, []int64{singleLedgerMagic, 2, 0, 8, 8, 0, 3, 3, 0, 3, 70, 100})
		for _, r := range []ledgerRec{singleHeader, singleSlots[0], singleSlots[1], singleIDs[0], singleIDs[1]} {
			m.seal(r)
		}
		m.close()
		return p
	}
	for _, tc := range []struct {
		name  string
		edit  func(p string)
		run   string
		trust ledgerTrust
		done  int64
	}{
		{"whole", func(string) {}, "r", "", 8},
		{"one copy", func(p string) { flipLedger(t, p, singleSlots[0].off+1, false) }, "r", "", 8},
		{"both copies", func(p string) { flipLedger(t, p, singleSlots[0].off+1, true) }, "r", "is damaged", 0},
		{"header", func(p string) { flipLedger(t, p, 1, true) }, "r", "is damaged or belongs to another run", 0},
		{"another run", func(string) {}, "other", "is damaged or belongs to another run", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := write(tc.name)
			tc.edit(p)
			l, err := openJobLedger(p, 1, false, tc.run)
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			if l.trust != tc.trust || l.badRank[0] != (tc.trust != "") {
				t.Fatalf("trust %q (rank counts bad: %v), want %q", l.trust, l.badRank[0], tc.trust)
			}
			if got := l.rank(0, 0)[1]; got != tc.done || l.stream(0)[swDone] != tc.done {
				t.Fatalf("counts %d, stream %d, want %d", got, l.stream(0)[swDone], tc.done)
			}
			if tc.trust == "" && (l.rank(0, 1)[1] != 3 || l.stream(0)[swIno] != 70) {
				t.Fatalf("stderr %d, stdout's file %d", l.rank(0, 1)[1], l.stream(0)[swIno])
			}
		})
	}
	// The format before checksums: magic, version 1, counts, identities.
	p := filepath.Join(dir, "v1")
	v1 := make([]byte, 8192)
	for i, w := range []int64{singleLedgerMagic, 1, 8, 8, 3, 3, 7, 70, 100} {
		binary.NativeEndian.PutUint64(v1[8*i:], uint64(w))
	}
	os.WriteFile(p, v1, 0o644)
	l, err := openJobLedger(p, 1, false, "r")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if l.trust != "" || l.rank(0, 0)[1] != 8 || l.rank(0, 1)[1] != 3 || l.stream(0)[swIno] != 70 {
		t.Fatalf("ledger of the previous format: trust %q, counts %v %v", l.trust, l.rank(0, 0), l.rank(0, 1))
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
		o := newRankOut(l.newStream(0, &out), l, 1, 0, false, true)
		o.restore(0, nil, false)
		o.WriteGuest([]byte("a\nb\nc\n"), 0)
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
		o = newRankOut(l.newStream(0, &out), l, 1, 0, false, true)
		o.restore(2, nil, false) // the checkpoint was after "a\n"
		o.WriteGuest([]byte("b\nc\nd\n"), 2)
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
	l, err := openJobLedger(filepath.Join(b.TempDir(), "ledger"), 1, true, "r")
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	o := host.NewOutput(newRankOut(l.newStream(0, io.Discard), l, 0, 0, false, false))
	line := []byte("a line of output of some forty bytes...\n")
	b.SetBytes(int64(len(line)))
	for b.Loop() {
		o.Write(line)
	}
}
