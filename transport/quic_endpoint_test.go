package transport

import (
	"context"
	"encoding/binary"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// quicEndpoints runs Endpoints for hosts a and b joined by QUIC: a dials b
// and redials whenever its link goes down; b takes what it accepts.
type quicEndpoints struct {
	ea, eb  *Endpoint
	ta, tb  *QUICTransport
	mu      sync.Mutex
	dialed  Link // a's current link
	redials atomic.Int32
	closed  atomic.Bool
}

func newQUICEndpoints(t testing.TB, cfg EndpointConfig) *quicEndpoints {
	t.Helper()
	c := newQUICCluster(t, "a", "b")
	q := &quicEndpoints{}
	q.ta, _ = c.listen(t, "a")
	q.tb, _ = c.listen(t, "b")
	route := routeMod("a", "b")
	ca, cb := cfg, cfg
	ca.Host, ca.Route = "a", route
	cb.Host, cb.Route = "b", route
	ca.OnLinkDown = func(host HostID, err error) {
		if !q.closed.Load() {
			go q.dial(t)
		}
	}
	var err error
	if q.ea, err = NewEndpoint(ca); err != nil {
		t.Fatal(err)
	}
	if q.eb, err = NewEndpoint(cb); err != nil {
		t.Fatal(err)
	}
	go func() {
		for {
			peer, l, err := q.tb.Accept(context.Background())
			if err != nil {
				return
			}
			q.eb.AddLink(peer, l)
		}
	}()
	t.Cleanup(func() {
		q.closed.Store(true)
		q.ea.Close()
		q.eb.Close()
	})
	q.dial(t)
	return q
}

func (q *quicEndpoints) dial(t testing.TB) {
	for !q.closed.Load() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		peer, l, err := q.ta.Dial(ctx, q.tb.Addr().String())
		cancel()
		if err == nil {
			q.mu.Lock()
			q.dialed = l
			q.mu.Unlock()
			q.ea.AddLink(peer, l)
			q.redials.Add(1)
			return
		}
		if errors.Is(err, ErrTransportClosed) {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// hangAfter is how long TestQUICEndpoints waits for what must come
// before it calls the test hung: minutes, since on a loaded machine a
// redial or 100,000 messages can take far longer than on an idle one.
const hangAfter = 5 * time.Minute

// TestQUICEndpoints: two Endpoints over QUIC exchange numbered messages
// both ways while the link is cut twice; every message arrives once, in
// order.
func TestQUICEndpoints(t *testing.T) {
	q := newQUICEndpoints(t, EndpointConfig{StableOnAck: true, Sender: SenderConfig{RetransmitAfter: 100 * time.Millisecond}})
	const n = 100000
	var wg sync.WaitGroup
	for _, dir := range []struct {
		from, to *Endpoint
		src, dst uint32
	}{{q.ea, q.eb, 0, 1}, {q.eb, q.ea, 1, 0}} {
		wg.Add(2)
		go func() {
			defer wg.Done()
			msg := make([]byte, 100)
			for i := range n {
				binary.BigEndian.PutUint64(msg, uint64(i))
				if err := dir.from.Send(dir.src, dir.dst, 7, msg); err != nil {
					t.Error(err)
					return
				}
			}
		}()
		go func() {
			defer wg.Done()
			// A hang detector only: a loaded machine is slow, not stuck.
			ctx, cancel := context.WithTimeout(context.Background(), hangAfter)
			defer cancel()
			for i := range n {
				m, err := dir.to.Recv(ctx, dir.dst, int32(dir.src), Any)
				if err != nil {
					t.Errorf("message %d to rank %d: %v", i, dir.dst, err)
					return
				}
				if got := binary.BigEndian.Uint64(m.Data); got != uint64(i) || m.Seq != uint64(i+1) {
					t.Errorf("rank %d got message %d (seq %d), want %d", dir.dst, got, m.Seq, i)
					return
				}
			}
		}()
	}
	// Cut the link twice while messages flow.
	for range 2 {
		time.Sleep(20 * time.Millisecond)
		q.mu.Lock()
		l := q.dialed
		q.mu.Unlock()
		before := q.redials.Load()
		l.Close()
		deadline := time.Now().Add(hangAfter)
		for q.redials.Load() == before {
			if time.Now().After(deadline) {
				t.Fatal("no redial")
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	wg.Wait()
	if r := q.redials.Load(); r < 3 {
		t.Errorf("%d dials, want 3", r)
	}
}

// BenchmarkQUICEndpoint measures the whole stack between two workers on two
// hosts over QUIC on loopback: one goroutine sends, one receives.
func BenchmarkQUICEndpoint(b *testing.B) {
	for _, size := range []int{64, 4096} {
		b.Run(map[int]string{64: "64B", 4096: "4KiB"}[size], func(b *testing.B) {
			q := newQUICEndpoints(b, EndpointConfig{StableOnAck: true})
			payload := make([]byte, size)
			done := make(chan error, 1)
			b.SetBytes(int64(size))
			b.ResetTimer()
			go func() {
				for range b.N {
					if _, err := q.eb.Recv(context.Background(), 1, 0, Any); err != nil {
						done <- err
						return
					}
				}
				done <- nil
			}()
			for range b.N {
				if err := q.ea.Send(0, 1, 0, payload); err != nil {
					b.Fatal(err)
				}
			}
			if err := <-done; err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msg/s")
		})
	}
}
