package host

import (
	"bytes"
	"context"
	"encoding/binary"
	"sync"
	"testing"
	"time"

	"github.com/librahost/librahost/transport"
)

// lineBuffer is a stdout the test reads while the guest writes.
type lineBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lineBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lineBuffer) lines() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return bytes.Count(l.b.Bytes(), []byte("\n"))
}

// floodEndpoint is host a's endpoint of a job of two whose rank 1 is on
// host b, with a send window of window bytes.
func floodEndpoint(t *testing.T, host transport.HostID, window int64) *transport.Endpoint {
	t.Helper()
	ep, err := transport.NewEndpoint(transport.EndpointConfig{
		Host:   host,
		Route:  func(r uint32) transport.HostID { return []transport.HostID{"a", "b"}[r%2] },
		Sender: transport.SenderConfig{Window: window},
		Logf:   t.Logf,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ep.Close() })
	return ep
}

// A send that waits for a full window is a capture point for both kinds
// of guest: a checkpoint requested then is taken, the wait ends when the
// guest must stop, and the restored guest sends the waiting message, and
// the rest, once each when acks flow.
func TestSendBlockedCapture(t *testing.T) {
	const n, size, window = 30, 100, 1000
	const fits = window / size
	for _, tc := range []struct{ name, src string }{
		{"go", "testdata/flood"},
		{"c", "testdata/flood.c"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			module := testGuest(t, tc.src)
			args := []string{"flood", "30", "100"}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			var out lineBuffer
			paused := make(chan *saved, 1)
			w, err := NewWorker(ctx, Config{
				Module: module, Args: args, Rank: 0, Size: 2, Endpoint: floodEndpoint(t, "a", window),
				Stdout: NewOutput(&out),
				OnPause: func(c *Capture) error {
					paused <- &saved{mem: bytes.Clone(c.Bytes()), globals: c.Globals, host: c.Host}
					return nil
				},
			})
			if err != nil {
				t.Fatal(err)
			}
			defer w.Close(context.Background())
			ran := make(chan error, 1)
			go func() { _, err := w.Run(ctx); ran <- err }()

			// The limits below only end a hang: a loaded machine may be slow.
			deadline := time.Now().Add(2 * time.Minute)
			for out.lines() < fits && time.Now().Before(deadline) {
				time.Sleep(5 * time.Millisecond)
			}
			time.Sleep(50 * time.Millisecond)
			if got := out.lines(); got != fits {
				t.Fatalf("sent %d messages, want %d: a window of %d bytes holds %d of %d", got, fits, window, fits, size)
			}
			w.RequestCheckpoint()
			var s *saved
			select {
			case s = <-paused:
			case <-time.After(2 * time.Minute):
				t.Fatal("no checkpoint while waiting in send")
			}
			if got := out.lines(); got != fits {
				t.Fatalf("%d messages sent through a full window", got-fits)
			}
			cancel()
			select {
			case <-ran:
			case <-time.After(2 * time.Minute):
				t.Fatal("a guest waiting in send did not stop")
			}

			// Restore with the window open: host b acks what it receives.
			a, b := floodEndpoint(t, "a", window), floodEndpoint(t, "b", window)
			la, lb := transport.Pipe()
			a.AddLink("b", la)
			b.AddLink("a", lb)
			w2, err := NewWorker(context.Background(), Config{Module: module, Args: args, Rank: 0, Size: 2, Endpoint: a})
			if err != nil {
				t.Fatal(err)
			}
			defer w2.Close(context.Background())
			if err := w2.Restore(s.state()); err != nil {
				t.Fatal(err)
			}
			if code, err := w2.Run(context.Background()); code != 0 || err != nil {
				t.Fatalf("restored run: exit %d, %v", code, err)
			}
			rctx, rcancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer rcancel()
			for i := fits; i < n; i++ {
				m, err := b.Recv(rctx, 1, 0, transport.Any)
				if err != nil {
					t.Fatalf("message %d: %v", i, err)
				}
				if got := binary.LittleEndian.Uint64(m.Data); got != uint64(i) {
					t.Fatalf("received message %d, want %d", got, i)
				}
			}
			if m, ok := b.TryRecv(1, transport.Any, transport.Any); ok {
				t.Fatalf("extra message %d", binary.LittleEndian.Uint64(m.Data))
			}
		})
	}
}
