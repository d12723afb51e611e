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
	"testing"
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
			w, err := NewWorker(ctx, Config{Module: module, Args: []string{"spin"}, Stdout: NewOutput(out, nil)})
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
