package job

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// A rank's output goes out in whole lines, counted in the ledger; a
// resume settles a write cut short by a kill from the stream's file size,
// and a restored rank prints what it held back at the checkpoint and
// nothing it had printed.
func TestJobLedger(t *testing.T) {
	dir := t.TempDir()
	outPath := filepath.Join(dir, "out")
	open := func(fresh bool) (*jobLedger, *os.File, *rankOut, *rankOut) {
		f, err := os.OpenFile(outPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		l, err := openJobLedger(filepath.Join(dir, "ledger"), 2, fresh, "run")
		if err != nil {
			t.Fatal(err)
		}
		l.bind(0, f, nil)
		st := l.newStream(0, f)
		return l, f, newRankOut(st, l, 0, 0, true, true), newRankOut(st, l, 1, 0, true, true)
	}
	l, f, r0, r1 := open(true)
	r0.restore(0, nil, false)
	r1.restore(0, nil, false)
	r0.WriteGuest([]byte("zero a\nzero "), 0)
	r1.WriteGuest([]byte("one a\n"), 0)
	tail := r0.tail() // a checkpoint of rank 0 here: position 12, "zero " held
	r0.WriteGuest([]byte("b\n"), 12)
	// A kill in rank 1's next write, after the line reached the file but
	// before its counts did.
	ss, rs := l.stream(0), l.rank(1, 0)
	ss[swWho], rs[0], ss[swIntent] = 2, rs[1]+6, ss[swDone]+10
	l.m.seal(rankRec(1, 0)) // as emit seals them before the write
	l.m.seal(streamRec(0))
	f.WriteString("[1] one b\n")
	l.Close()
	f.Close()

	l, f, r0, r1 = open(false)
	defer l.Close()
	defer f.Close()
	if got := l.rank(1, 0)[1]; got != 12 {
		t.Fatalf("rank 1's count after the resume: %d, want 12 (its cut-short write was written)", got)
	}
	// Rank 0 resumes from its checkpoint; rank 1 from the start.
	if lost := r0.restore(12, tail, false); lost != 0 {
		t.Fatalf("lost %d", lost)
	}
	r1.restore(0, nil, false)
	r0.WriteGuest([]byte("b\nzero c\n"), 12)
	r1.WriteGuest([]byte("one a\none b\none c\n"), 0)
	r0.Flush()
	r1.Flush()
	b, _ := os.ReadFile(outPath)
	want := "[0] zero a\n[1] one a\n[0] zero b\n[1] one b\n[0] zero c\n[1] one c\n"
	if string(b) != want {
		t.Fatalf("output:\n%s\nwant:\n%s", b, want)
	}
}

// A line longer than a rank holds back goes out in pieces; a kill after
// one of them and a resume from before it does not start the rest of the
// line with a second prefix.
func TestJobLedgerLongLine(t *testing.T) {
	dir := t.TempDir()
	var out bytes.Buffer
	long := bytes.Repeat([]byte("x"), 70<<10)
	for _, tc := range []struct {
		name    string
		pos     int64  // the checkpoint's position
		tail    []byte // what the rank held back at it
		midLine bool   // and whether it had printed part of a line
	}{
		{"checkpoint before the line", 0, nil, false},
		{"checkpoint inside the held part", int64(len(long)) + 5, bytes.Repeat([]byte("x"), 5), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out.Reset()
			l, err := openJobLedger(filepath.Join(dir, "ledger-"+tc.name), 1, true, "run")
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			st := l.newStream(0, &out)
			o := newRankOut(st, l, 0, 0, true, true)
			o.WriteGuest(long, 0) // over 64 KiB: written without its end
			if out.Len() != 4+len(long) {
				t.Fatalf("%d bytes out, want the prefix and the line so far", out.Len())
			}
			// The resumed rank, from the checkpoint.
			o = newRankOut(st, l, 0, 0, true, true)
			o.restore(tc.pos, tc.tail, tc.midLine)
			o.WriteGuest(append(bytes.Clone(long), "xxxxx end\n"...)[tc.pos:], tc.pos)
			o.Flush()
			want := "[0] " + string(long) + "xxxxx end\n"
			if out.String() != want {
				t.Fatalf("output ends %q, want %q", out.String()[max(0, out.Len()-30):], want[len(want)-30:])
			}
		})
	}
}
