package jobrec

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"
)

// readAll reads r to its end (not following).
func readAll(t *testing.T, r *Reader) []Chunk {
	t.Helper()
	var out []Chunk
	for {
		c, err := r.Next(context.Background(), false)
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, c)
	}
}

func text(cs []Chunk) string {
	var b bytes.Buffer
	for _, c := range cs {
		fmt.Fprintf(&b, "%d/%d@%d:%s|", c.Rank, c.Stream, c.Off, c.P)
	}
	return b.String()
}

// What is appended is read back in order, while the job runs and after
// its end from the records opened again; a reader from now sees only what
// comes after it began.
func TestOutputReadBack(t *testing.T) {
	dir := t.TempDir()
	d := open(t, Config{Dir: dir})
	d.Put(rec("j", false))
	l, err := d.Create("j")
	if err != nil {
		t.Fatal(err)
	}
	l.Append(0, 1, 0, []byte("a\n"))
	l.Append(1, 2, 0, []byte("err\n"))
	now := l.NewReader(true)
	l.Append(0, 1, 2, []byte("b\n"))
	const want = "0/1@0:a\n|1/2@0:err\n|0/1@2:b\n|"
	if got := text(readAll(t, l.NewReader(false))); got != want {
		t.Fatalf("read %q, want %q", got, want)
	}
	if got := text(readAll(t, now)); got != "0/1@2:b\n|" {
		t.Fatalf("from now: %q", got)
	}
	if err := d.Finish("j"); err != nil {
		t.Fatal(err)
	}
	if err := l.Append(0, 1, 4, []byte("late")); !errors.Is(err, ErrFinished) {
		t.Fatalf("append after finish: %v", err)
	}
	d.Put(rec("j", true))
	d.Close()

	d = open(t, Config{Dir: dir})
	l2, err := d.Output("j")
	if err != nil {
		t.Fatal(err)
	}
	if got := text(readAll(t, l2.NewReader(false))); got != want {
		t.Fatalf("after reopen %q, want %q", got, want)
	}
	if _, err := d.Output("other"); !errors.Is(err, ErrNoRecord) {
		t.Fatalf("output of no job: %v", err)
	}
}

// A follower waits for each append and ends at Finish; one whose context
// ends returns its cause.
func TestOutputFollow(t *testing.T) {
	d := open(t, Config{})
	l, _ := d.Create("j")
	r := l.NewReader(false)
	got := make(chan string)
	go func() {
		var cs []Chunk
		for {
			c, err := r.Next(context.Background(), true)
			if err != nil {
				got <- text(cs) + err.Error()
				return
			}
			cs = append(cs, c)
			got <- ""
		}
	}()
	for i := range 3 {
		l.Append(0, 1, uint64(i), []byte{'0' + byte(i)})
		<-got // read before the next append
	}
	l.Finish()
	if s := <-got; s != "0/1@0:0|0/1@1:1|0/1@2:2|EOF" {
		t.Fatalf("followed %q", s)
	}

	l2, _ := d.Create("k")
	ctx, cancel := context.WithCancelCause(context.Background())
	stop := errors.New("client gone")
	cancel(stop)
	if _, err := l2.NewReader(false).Next(ctx, true); err != stop {
		t.Fatalf("follow with an ended context: %v", err)
	}
}

// A log keeps its newest output within MaxOutput: a reader from the start
// begins past the bytes removed (its offsets say where), and one that
// fell behind goes on from the oldest kept.
func TestOutputBound(t *testing.T) {
	d := open(t, Config{MaxOutput: 800}) // segments of 100 bytes: three 31-byte frames each
	l, _ := d.Create("j")
	behind := l.NewReader(false)
	line := []byte("0123456789")
	for i := range 100 {
		l.Append(0, 1, uint64(i*len(line)), line)
	}
	if k := l.Kept(); k > 800 || k < 700-31 {
		t.Fatalf("kept %d bytes, want 800 at most, about 700 at least", k)
	}
	cs := readAll(t, l.NewReader(false))
	if len(cs) == 0 || cs[0].Off == 0 || cs[len(cs)-1].Off != 990 {
		t.Fatalf("read %d chunks from %v", len(cs), cs[0].Off)
	}
	for i := 1; i < len(cs); i++ {
		if cs[i].Off != cs[i-1].Off+10 {
			t.Fatalf("gap between %d and %d", cs[i-1].Off, cs[i].Off)
		}
	}
	if c, err := behind.Next(context.Background(), false); err != nil || c.Off != cs[0].Off {
		t.Fatalf("the reader behind: %d, %v; want the oldest kept, %d", c.Off, err, cs[0].Off)
	}
	ents, _ := os.ReadDir(filepath.Join(d.cfg.Dir, "output", "j"))
	if len(ents) > 9 {
		t.Fatalf("%d segments left", len(ents))
	}
}

// A damaged frame ends the read in one error naming the file.
func TestOutputDamaged(t *testing.T) {
	d := open(t, Config{})
	l, _ := d.Create("j")
	l.Append(0, 1, 0, []byte("hello\n"))
	d.Put(rec("j", true))
	d.Finish("j")
	seg := filepath.Join(d.cfg.Dir, "output", "j", segName(1))
	b, _ := os.ReadFile(seg)
	b[len(b)-2] ^= 1
	os.WriteFile(seg, b, 0o644)
	l2, _ := d.Output("j")
	_, err := l2.NewReader(false).Next(context.Background(), false)
	if !errors.Is(err, ErrDamaged) || !bytes.Contains([]byte(err.Error()), []byte(seg)) {
		t.Fatalf("damaged: %v", err)
	}
}

func FuzzDecodeFrame(f *testing.F) {
	f.Add(encodeFrame(Chunk{Rank: 3, Stream: 2, Off: 7, P: []byte("hi")}))
	f.Add([]byte{0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := decodeFrame(b)
		if err != nil {
			if !errors.Is(err, ErrDamaged) {
				t.Fatalf("error %v is not ErrDamaged", err)
			}
			return
		}
		if !bytes.Equal(encodeFrame(c), b) {
			t.Fatalf("%x decodes to %+v, which encodes otherwise", b, c)
		}
	})
}
