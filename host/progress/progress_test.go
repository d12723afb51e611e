package progress

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// fakeTerm is a terminal that keeps what is drawn on it.
type fakeTerm struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (f *fakeTerm) IsTerminal() bool { return true }

func (f *fakeTerm) Write(p []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.buf.Write(p)
}

func (f *fakeTerm) String() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.buf.String()
}

// wait advances the bubble's clock by d and lets its goroutines run.
func wait(d time.Duration) {
	time.Sleep(d)
	synctest.Wait()
}

// TestBarAfterThreshold: on a terminal, a transfer of known size draws
// nothing for its first second, then a bar with its label and the bytes
// done that moves as bytes are added; Done erases it and nothing is drawn
// after.
func TestBarAfterThreshold(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var term fakeTerm
		b := New(&term, "sending app.wasm", 4<<20)
		defer b.Done()
		b.Add(1 << 20)
		wait(Threshold - time.Millisecond)
		if s := term.String(); s != "" {
			t.Fatalf("drawn before %s: %q", Threshold, s)
		}
		wait(time.Millisecond)
		s := term.String()
		if !strings.Contains(s, "sending app.wasm") || !strings.Contains(s, "25%") || !strings.HasPrefix(s, "\r") {
			t.Fatalf("after %s: %q, want a bar at 25%%", Threshold, s)
		}
		b.Add(1 << 20)
		wait(redraw)
		if s := term.String(); !strings.Contains(s, "50%") {
			t.Fatalf("after adding to 50%%: %q", s)
		}
		b.Done()
		end := term.String()
		if last := end[strings.LastIndex(end, "\r")-1:]; strings.TrimSpace(last) != "" {
			t.Fatalf("Done left %q on the line, want it erased", last)
		}
		b.Add(1 << 20)
		b.Done()
		wait(5 * redraw)
		if s := term.String(); s != end {
			t.Fatalf("drawn after Done: %q", s[len(end):])
		}
	})
}

// TestSpinner: a wait of unknown length gets a spinner with its label and
// the time elapsed, redrawn while nothing happens.
func TestSpinner(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var term fakeTerm
		b := New(&term, "wasm-opt --asyncify", 0)
		defer b.Done()
		wait(Threshold)
		first := term.String()
		if !strings.Contains(first, "wasm-opt --asyncify") {
			t.Fatalf("after %s: %q", Threshold, first)
		}
		wait(2*time.Second + redraw)
		s := term.String()
		if len(s) <= len(first) || !strings.HasSuffix(strings.TrimSpace(s), "[3s]") {
			t.Fatalf("3 s into the wait: %q, want a redraw showing 3s", s)
		}
		b.Done()
	})
}

// TestNoBarWhereNoTerminal: a buffer, a pipe and a short wait on a
// terminal get not one byte, and counting still passes every byte on.
func TestNoBarWhereNoTerminal(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var buf bytes.Buffer
		r, w, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		var term fakeTerm
		for _, out := range []io.Writer{&buf, w} {
			b := New(out, "build", 0)
			b.Add(10)
			wait(3 * Threshold)
			b.Done()
		}
		quick := New(&term, "quick", 0)
		wait(Threshold - time.Millisecond)
		quick.Done()
		wait(3 * Threshold)
		w.Close()
		piped, err := io.ReadAll(r)
		if err != nil {
			t.Fatal(err)
		}
		if buf.Len() != 0 || len(piped) != 0 || term.String() != "" {
			t.Fatalf("drawn where no bar belongs: buffer %q, pipe %q, short wait %q", buf.String(), piped, term.String())
		}
	})
}

// TestCount: a large write through Count reaches the writer whole and
// moves the bar in pieces.
func TestCount(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var term fakeTerm
		var dst countWrites
		b := New(&term, "send", 3*piece)
		defer b.Done()
		wait(Threshold)
		data := bytes.Repeat([]byte{7}, 3*piece)
		if n, err := b.Count(&dst).Write(data); n != len(data) || err != nil {
			t.Fatalf("wrote %d, %v", n, err)
		}
		if dst.n != len(data) || dst.writes != 3 {
			t.Fatalf("the writer got %d bytes in %d writes, want %d in 3", dst.n, dst.writes, len(data))
		}
		if s := term.String(); !strings.Contains(s, "33%") || !strings.Contains(s, "66%") {
			t.Fatalf("the bar did not move in pieces: %q", s)
		}
		b.Done()
	})
}

type countWrites struct{ n, writes int }

func (c *countWrites) Write(p []byte) (int, error) {
	c.n += len(p)
	c.writes++
	return len(p), nil
}

// TestAbove: a line printed while the bar is drawn comes after the bar's
// line was erased, so it does not share a line with the bar.
func TestAbove(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var term fakeTerm
		b := New(&term, "go build", 0)
		defer b.Done()
		wait(Threshold)
		fmt.Fprintln(b.Above(&term), "main.go:3: undefined: x")
		s := term.String()
		i := strings.Index(s, "main.go:3")
		if i < 1 || s[i-1] != '\r' {
			t.Fatalf("the line was printed onto the bar's: %q", s)
		}
		b.Done()
		var nilBar *Bar
		nilBar.Add(1)
		nilBar.Done()
	})
}

// TestReport: a caller that reports where it stands moves the bar to
// there, and a total that grows makes the same bytes a smaller part.
func TestReport(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var term fakeTerm
		b := New(&term, "replica to b", 100<<20)
		defer b.Done()
		b.Report(50<<20, 100<<20)
		wait(Threshold)
		if s := term.String(); !strings.Contains(s, "50%") {
			t.Fatalf("at 50 of 100 MB: %q", s)
		}
		b.Report(60<<20, 200<<20)
		wait(redraw)
		s := term.String()
		if last := s[strings.LastIndex(s, "replica"):]; !strings.Contains(last, "30%") {
			t.Fatalf("at 60 of 200 MB the bar says %q", last)
		}
	})
}
