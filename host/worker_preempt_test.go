package host

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// lineSignal closes seen once its writer has been given text.
type lineSignal struct {
	mu   sync.Mutex
	buf  bytes.Buffer
	text []byte
	seen chan struct{}
}

func (l *lineSignal) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	had := bytes.Contains(l.buf.Bytes(), l.text)
	l.buf.Write(p)
	if !had && bytes.Contains(l.buf.Bytes(), l.text) {
		close(l.seen)
	}
	return len(p), nil
}

// A guest that computes without calling the host does not hold up the
// process: a collection, which stops every goroutine, ends while the guest
// still computes, and with GOMAXPROCS=1 the test's goroutine gets to run
// at all. The guest then stops when its run is cancelled. Without the
// preemption calls the collection waits for the guest's end (2^35 loop
// iterations later), and the test sees that the guest ended first.
func TestComputeDoesNotFreeze(t *testing.T) {
	module, err := os.ReadFile("testdata/spin.wasm")
	if err != nil {
		t.Fatal(err)
	}
	for _, procs := range []int{1, runtime.GOMAXPROCS(0)} {
		t.Run(fmt.Sprint("GOMAXPROCS=", procs), func(t *testing.T) {
			defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(procs))
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			out := &lineSignal{text: []byte("spinning\n"), seen: make(chan struct{})}
			w, err := NewWorker(ctx, Config{Module: module, Args: []string{"spin"}, Stdout: NewOutput(out)})
			if err != nil {
				t.Fatal(err)
			}
			defer w.Close(ctx)
			if !w.Preemptible() {
				t.Fatal("the guest's code was not given preemption calls")
			}
			var ended atomic.Bool
			done := make(chan error, 1)
			go func() {
				_, err := w.Run(ctx)
				ended.Store(true)
				done <- err
			}()
			<-out.seen // the guest computes from now on
			runtime.GC()
			if ended.Load() {
				t.Fatal("the collection ended only after the guest did")
			}
			cancel()
			if err := <-done; !errors.Is(err, context.Canceled) {
				t.Fatalf("cancelled guest ended with %v", err)
			}
			if w.preempts.Load() == 0 {
				t.Error("the guest never called libra.preempt")
			}
		})
	}
}

// BenchmarkPreemptCost runs compute-bound guests to their end with and
// without the preemption calls (wasmbin.InsertPreemption), alternating,
// and reports each one's run time and their ratio.
func BenchmarkPreemptCost(b *testing.B) {
	for _, g := range []struct {
		name, src string
		args      []string
	}{
		{"pi-go", "../samples/pi", []string{"pi", "-darts", "30000000"}},
		{"heat-go", "../samples/heat", []string{"heat", "-grid", "512", "-steps", "400", "-every", "400"}},
		{"pi-c", "../samples/pi/c/pi.c", []string{"pi", "300000000"}},
		{"nbody-c", "../samples/nbody/nbody.c", []string{"nbody", "3000000"}},
	} {
		b.Run(g.name, func(b *testing.B) {
			module := testGuest(b, g.src)
			var outs [2]bytes.Buffer
			var times [2]time.Duration
			var preempts int64
			for i := 0; i < b.N; i++ {
				for k, budget := range []int32{-1, 0} {
					outs[k].Reset()
					d, n := runToEnd(b, Config{Module: module, Args: g.args, Cache: benchCache(),
						PreemptBudget: budget, Stdout: NewOutput(&outs[k])})
					times[k] += d
					preempts += n
				}
				if outs[0].String() != outs[1].String() {
					b.Fatalf("outputs differ:\n%s\n%s", outs[0].String(), outs[1].String())
				}
			}
			b.ReportMetric(float64(times[0].Milliseconds())/float64(b.N), "plain-ms")
			b.ReportMetric(float64(times[1].Milliseconds())/float64(b.N), "preempt-ms")
			b.ReportMetric(float64(times[1])/float64(times[0]), "ratio")
			b.ReportMetric(float64(preempts)/times[1].Seconds(), "preempts/s")
		})
	}
}

// runToEnd runs a worker to its end and returns the CPU time the process
// spent meanwhile (the guest's, mostly: a loaded machine changes it less
// than the wall time) and its libra.preempt calls.
func runToEnd(b *testing.B, cfg Config) (time.Duration, int64) {
	ctx := context.Background()
	w, err := NewWorker(ctx, cfg)
	if err != nil {
		b.Fatal(err)
	}
	defer w.Close(ctx)
	start := cpuTime()
	code, err := w.Run(ctx)
	d := cpuTime() - start
	if err != nil || code != 0 {
		b.Fatalf("run: exit %d, %v", code, err)
	}
	return d, w.preempts.Load()
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// The samples and test guests print the same with the preemption calls as
// without, with a budget so small that their loops leave for the import
// all the time; those that print as they go are also checkpointed halfway
// and restored, and the restored run prints the rest.
func TestPreemptSameOutput(t *testing.T) {
	for _, g := range []struct {
		name, src string
		args      []string
		ckptAt    int // bytes of output after which to checkpoint (work must remain after them); 0: none
	}{
		{"pi-go", "../samples/pi", []string{"pi", "-darts", "300000"}, 0},
		{"pi-c", "../samples/pi/c/pi.c", []string{"pi", "3000000"}, 0},
		{"heat", "../samples/heat", []string{"heat", "-grid", "64", "-steps", "200", "-every", "20"}, 1},
		{"sieve", "../samples/sieve", []string{"sieve", "-n", "5000000", "-every", "1"}, 1}, // a second segment to compute after the first line
		{"nbody", "../samples/nbody/nbody.c", []string{"nbody", "200000", "20000"}, 1},
		{"count-go", "testdata/count", []string{"count", "300"}, 1},
		{"count-c", "testdata/count.c", []string{"count", "300"}, 1},
	} {
		t.Run(g.name, func(t *testing.T) {
			module := testGuest(t, g.src)
			plain := func(c *Config) { c.PreemptBudget = -1 }
			tiny := func(c *Config) { c.PreemptBudget = 16 }
			want := runOutput(t, module, g.args, plain)
			if got := runOutput(t, module, g.args, tiny); !bytes.Equal(got, want) {
				t.Fatalf("with preemption calls the guest printed\n%s\nwant\n%s", got, want)
			}
			if g.ckptAt == 0 {
				return
			}
			full, s := runCapturing(t, module, g.args, g.ckptAt, tiny)
			if !bytes.Equal(full, want) {
				t.Fatalf("checkpointed run printed\n%s\nwant\n%s", full, want)
			}
			got, err := restoreRun(t, module, g.args, s.state(), tiny)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want[s.outPos:]) {
				t.Fatalf("restored run printed\n%s\nwant\n%s", got, want[s.outPos:])
			}
		})
	}
}

// runOutput runs module to its end and returns what it printed.
func runOutput(t *testing.T, module []byte, args []string, opt func(*Config)) []byte {
	t.Helper()
	ctx := context.Background()
	var out bytes.Buffer
	cfg := Config{Module: module, Args: args, Stdout: NewOutput(&out)}
	opt(&cfg)
	w, err := NewWorker(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close(ctx)
	if w.Preemptible() != (cfg.PreemptBudget >= 0) {
		t.Fatalf("budget %d, preemptible %v", cfg.PreemptBudget, w.Preemptible())
	}
	code, err := w.Run(ctx)
	if err != nil || code != 0 {
		t.Fatalf("run: exit %d, %v", code, err)
	}
	return out.Bytes()
}
