package host

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
)

// saved is a capture kept in memory.
type saved struct {
	mem     []byte
	globals []uint64
	host    []byte
	outPos  int64
}

func (s *saved) state() *State {
	return &State{
		MemSize:    uint64(len(s.mem)),
		ReadMemory: func(dst []byte) error { copy(dst, s.mem); return nil },
		Globals:    append([]uint64(nil), s.globals...),
		Host:       s.host,
	}
}

// runCapturing runs module to its end, asking for a checkpoint when the
// guest has printed `after` bytes, and returns its output and the capture.
// opts change the worker's configuration.
func runCapturing(t *testing.T, module []byte, args []string, after int, opts ...func(*Config)) ([]byte, *saved) {
	t.Helper()
	ctx := context.Background()
	var out bytes.Buffer
	var w *Worker
	var s *saved
	trigger := &triggerWriter{w: &out, at: after, fire: func() { w.RequestCheckpoint() }}
	stdout := NewOutput(trigger)
	cfg := Config{
		Module: module, Args: args, Stdout: stdout,
		OnPause: func(c *Capture) error {
			if s == nil {
				s = &saved{mem: bytes.Clone(c.Bytes()), globals: c.Globals, host: c.Host, outPos: stdout.Position()}
			}
			return nil
		},
	}
	for _, o := range opts {
		o(&cfg)
	}
	w, err := NewWorker(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close(ctx)
	code, err := w.Run(ctx)
	if err != nil || code != 0 {
		t.Fatalf("run: code %d, %v", code, err)
	}
	if s == nil {
		t.Fatal("no checkpoint was taken")
	}
	return out.Bytes(), s
}

// restoreRun restores s into a fresh worker and runs it to its end.
func restoreRun(t *testing.T, module []byte, args []string, st *State, opts ...func(*Config)) ([]byte, error) {
	t.Helper()
	ctx := context.Background()
	var out bytes.Buffer
	cfg := Config{Module: module, Args: args, Stdout: NewOutput(&out)}
	for _, o := range opts {
		o(&cfg)
	}
	w, err := NewWorker(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close(ctx)
	if err := w.Restore(st); err != nil {
		return nil, err
	}
	code, err := w.Run(ctx)
	if err == nil && code != 0 {
		err = fmt.Errorf("exit code %d", code)
	}
	return out.Bytes(), err
}

// triggerWriter calls fire once, when at bytes have been written.
type triggerWriter struct {
	w     *bytes.Buffer
	at    int
	fire  func()
	fired bool
}

func (tw *triggerWriter) Write(p []byte) (int, error) {
	n, err := tw.w.Write(p)
	if !tw.fired && tw.w.Len() >= tw.at {
		tw.fired = true
		tw.fire()
	}
	return n, err
}

// countGuests is the count program built for each capture mechanism.
var countGuests = []struct{ name, src string }{
	{"go", "testdata/count"},
	{"c", "testdata/count.c"},
}

func TestCaptureRestore(t *testing.T) {
	for _, tc := range countGuests {
		t.Run(tc.name, func(t *testing.T) {
			module := testGuest(t, tc.src)
			args := []string{"count", "700"}
			full, s := runCapturing(t, module, args, 100)
			if s.outPos == 0 || s.outPos >= int64(len(full)) {
				t.Fatalf("capture at output position %d of %d", s.outPos, len(full))
			}
			got, err := restoreRun(t, module, args, s.state())
			if err != nil {
				t.Fatal(err)
			}
			if want := full[s.outPos:]; !bytes.Equal(got, want) {
				t.Fatalf("restored run printed\n%s\nwant\n%s", got, want)
			}
		})
	}
}

// Restoring memory without the globals must not work: this guards the
// rewrite that exports them.
func TestRestoreWithoutGlobals(t *testing.T) {
	for _, tc := range countGuests {
		t.Run(tc.name, func(t *testing.T) {
			module := testGuest(t, tc.src)
			args := []string{"count", "700"}
			full, s := runCapturing(t, module, args, 100)
			st := s.state()
			clear(st.Globals)
			got, err := restoreRun(t, module, args, st)
			if err == nil && bytes.Equal(got, full[s.outPos:]) {
				t.Fatal("a restore without globals gave the right output: the globals are not what carries the state")
			}
			t.Logf("without globals: err=%v, output %q", err, firstLine(got))
		})
	}
}

func firstLine(b []byte) string {
	s, _, _ := strings.Cut(string(b), "\n")
	return s
}
