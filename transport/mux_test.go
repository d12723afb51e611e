package transport

import (
	"context"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

var long = flag.Bool("long", false, "run the long transport tests (millions of messages)")

func routeMod(hosts ...HostID) func(uint32) HostID {
	return func(r uint32) HostID { return hosts[int(r)%len(hosts)] }
}

func newTestEndpoint(t *testing.T, cfg EndpointConfig) *Endpoint {
	t.Helper()
	if cfg.Logf == nil {
		cfg.Logf = t.Logf
	}
	e, err := NewEndpoint(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	return e
}

func TestEndpointLocal(t *testing.T) {
	e := newTestEndpoint(t, EndpointConfig{Host: "a", Route: routeMod("a")})
	ctx := context.Background()
	e.SetEpoch(0, 3)
	for i, tag := range []int32{5, 6, 5} {
		if err := e.Send(0, 1, tag, []byte{byte(i)}); err != nil {
			t.Fatal(err)
		}
	}
	e.Send(2, 1, 6, []byte("from 2"))
	m, err := e.Recv(ctx, 1, Any, 6)
	if err != nil || m.Src != 0 || m.Data[0] != 1 || m.Epoch != 3 || m.Seq != 2 {
		t.Fatalf("recv tag 6: %+v %v", m, err)
	}
	m, err = e.Recv(ctx, 1, 2, Any)
	if err != nil || string(m.Data) != "from 2" || m.Seq != 1 {
		t.Fatalf("recv src 2: %+v %v", m, err)
	}
	if m, ok := e.TryRecv(1, 0, Any); !ok || m.Data[0] != 0 {
		t.Fatalf("tryrecv: %+v %v", m, ok)
	}
	if m, ok := e.TryRecv(1, 0, Any); !ok || m.Data[0] != 2 {
		t.Fatalf("tryrecv: %+v %v", m, ok)
	}
	if _, ok := e.TryRecv(1, Any, Any); ok {
		t.Fatal("inbox should be empty")
	}
	go e.Send(1, 0, 0, []byte("x"))
	<-e.Inbox(0)
	if _, ok := e.TryRecv(0, 1, 0); !ok {
		t.Fatal("no message after notification")
	}
	ctx2, cancel := context.WithTimeout(ctx, 5*time.Millisecond)
	defer cancel()
	if _, err := e.Recv(ctx2, 0, Any, Any); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("recv on empty inbox: %v", err)
	}
	if err := e.Send(7, 0, 0, nil); err != nil {
		t.Fatal(err) // every rank is local with one host
	}
	e.Close()
	if err := e.Send(0, 1, 0, nil); !errors.Is(err, ErrClosed) {
		t.Fatalf("send after close: %v", err)
	}
}

// TestEndpointWindowBlocksUntilLink: with no link to the destination's
// host, Send blocks once the window is full and resumes when a link comes
// and acks flow.
func TestEndpointWindowBlocksUntilLink(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		route := routeMod("a", "b")
		cfg := EndpointConfig{Route: route, Sender: SenderConfig{Window: 100}}
		cfg.Host = "a"
		a := newTestEndpoint(t, cfg)
		cfg.Host = "b"
		b := newTestEndpoint(t, cfg)
		var sent atomic.Int32
		go func() {
			for range 10 {
				a.Send(0, 1, 0, make([]byte, 40))
				sent.Add(1)
			}
		}()
		synctest.Wait()
		if n := sent.Load(); n != 2 {
			t.Fatalf("sent %d before blocking, want 2 (window 100, 40 B each)", n)
		}
		la, lb := Pipe()
		a.AddLink("b", la)
		b.AddLink("a", lb)
		for i := range 10 {
			m, err := b.Recv(context.Background(), 1, 0, Any)
			if err != nil || m.Seq != uint64(i+1) {
				t.Fatalf("message %d: %+v %v", i, m, err)
			}
		}
	})
}

func TestEndpointRefusesPeers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var mu sync.Mutex
		var downs []string
		cfg := EndpointConfig{Host: "a", Route: routeMod("a", "b"), ClusterID: "c1",
			OnLinkDown: func(h HostID, err error) {
				mu.Lock()
				downs = append(downs, fmt.Sprintf("%s: %v", h, err))
				mu.Unlock()
			}}
		a := newTestEndpoint(t, cfg)
		hello := func(host, cluster string) []byte {
			return AppendFrame(nil, &Frame{Type: FrameHello, Version: FrameVersion, HostID: host, ClusterID: cluster})
		}
		data := AppendFrame(nil, &Frame{Type: FrameData, Src: 1, Dst: 0, Seq: 1, Payload: []byte("hi")})
		cases := []struct {
			name string
			bufs [][]byte
			want string
		}{
			{"no hello", [][]byte{data}, "did not start with HELLO"},
			{"other cluster", [][]byte{hello("b", "c2")}, `cluster "c2"`},
			{"wrong host", [][]byte{hello("x", "c1")}, `says it is "x"`},
			{"garbage", [][]byte{hello("b", "c1"), []byte("\x4c\x01\x01\x09garbage")}, "truncated frame"},
			// A peer of the frame format before stability and incarnations.
			{"version 1", [][]byte{{FrameMagic, 1, byte(FrameHello), 5, 1, 1, 'b', 0, 0}}, "peer b speaks version 1, this host 3"},
		}
		for _, c := range cases {
			mine, theirs := Pipe()
			a.AddLink("b", mine)
			for _, b := range c.bufs {
				theirs.Send(b)
			}
			synctest.Wait()
			mu.Lock()
			if len(downs) != 1 || !strings.Contains(downs[0], c.want) {
				t.Errorf("%s: link downs %q, want one with %q", c.name, downs, c.want)
			}
			downs = nil
			mu.Unlock()
			if _, ok := a.TryRecv(0, Any, Any); ok {
				t.Errorf("%s: a message from a refused peer was delivered", c.name)
			}
		}
		// A good peer gets through.
		mine, theirs := Pipe()
		a.AddLink("b", mine)
		theirs.Send(append(hello("b", "c1"), data...))
		m, err := a.Recv(context.Background(), 0, 1, Any)
		if err != nil || string(m.Data) != "hi" {
			t.Fatalf("good peer: %+v %v", m, err)
		}
	})
}

// TestEndpointFaults is the acceptance test of the transport: three hosts,
// two workers each, every worker sending to every other one over links
// with 20 % loss, 10 % duplication, reordering, delay and jitter, a 2 s
// partition between two hosts and a reconnect between two others. Every
// message must arrive exactly once and in order per channel. Timers run
// on synctest's fake clock, so the partition costs no real time.
func TestEndpointFaults(t *testing.T) {
	total := 1_200_000
	if *long {
		total = 6_000_000
	}
	if testing.Short() {
		total = 30_000
	}
	synctest.Test(t, func(t *testing.T) { runFaultyCluster(t, total) })
}

func runFaultyCluster(t *testing.T, total int) {
	hosts := []HostID{"a", "b", "c"}
	const workers = 6
	route := routeMod(hosts...)
	per := total / (workers * (workers - 1))
	eps := make([]*Endpoint, len(hosts))
	for i, h := range hosts {
		eps[i] = newTestEndpoint(t, EndpointConfig{Host: h, Route: route, ClusterID: "test", StableOnAck: true,
			Sender: SenderConfig{Window: 32 << 10, RetransmitAfter: 40 * time.Millisecond}})
	}
	faults := Faults{Drop: 0.2, Duplicate: 0.1, Reorder: 0.1, Delay: 2 * time.Millisecond, Jitter: 3 * time.Millisecond}
	links := map[[2]int][2]*FaultLink{}
	connect := func(i, j int, seed uint64) {
		a, b := Pipe()
		fa, fb := faults, faults
		fa.Seed, fb.Seed = seed, seed+1
		la, lb := WithFaults(a, fa), WithFaults(b, fb)
		links[[2]int{i, j}] = [2]*FaultLink{la, lb}
		eps[i].AddLink(hosts[j], la)
		eps[j].AddLink(hosts[i], lb)
	}
	connect(0, 1, 10)
	connect(0, 2, 20)
	connect(1, 2, 30)

	var delivered atomic.Int64
	var partitionAt, reconnectAt time.Time
	var once1, once2 sync.Once
	progress := func() {
		n := delivered.Add(1)
		if n == int64(total)/3 {
			once1.Do(func() {
				partitionAt = time.Now()
				for _, l := range links[[2]int{0, 1}] {
					l.Partition(partitionAt.Add(2 * time.Second))
				}
			})
		}
		if n == int64(total)/2 {
			once2.Do(func() {
				reconnectAt = time.Now()
				connect(1, 2, 40)
			})
		}
	}
	var wg sync.WaitGroup
	errs := make(chan error, 2*workers)
	for src := range uint32(workers) {
		ep := eps[int(src)%len(hosts)]
		wg.Add(2)
		go func() {
			defer wg.Done()
			buf := make([]byte, 16)
			for i := range per {
				for dst := range uint32(workers) {
					if dst == src {
						continue
					}
					binary.LittleEndian.PutUint64(buf, uint64(i))
					binary.LittleEndian.PutUint64(buf[8:], uint64(src)<<32|uint64(dst))
					if err := ep.Send(src, dst, int32(i%3), buf); err != nil {
						errs <- err
						return
					}
				}
			}
		}()
		go func() {
			defer wg.Done()
			dst := src
			next := make([]uint64, workers)
			for range per * (workers - 1) {
				m, err := ep.Recv(context.Background(), dst, Any, Any)
				if err != nil {
					errs <- err
					return
				}
				i := binary.LittleEndian.Uint64(m.Data)
				ch := binary.LittleEndian.Uint64(m.Data[8:])
				if ch != uint64(m.Src)<<32|uint64(dst) || i != next[m.Src] || m.Seq != i+1 || m.Tag != int32(i%3) {
					errs <- fmt.Errorf("%d->%d: got message %d (seq %d, tag %d), want %d", m.Src, dst, i, m.Seq, m.Tag, next[m.Src])
					return
				}
				next[m.Src]++
				progress()
			}
		}()
	}
	start := time.Now()
	wg.Wait()
	end := time.Now()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	// Nothing more may arrive: duplicates were dropped.
	time.Sleep(time.Second)
	synctest.Wait()
	for dst := range uint32(workers) {
		if m, ok := eps[int(dst)%len(hosts)].TryRecv(dst, Any, Any); ok {
			t.Fatalf("%d: extra message from %d seq %d", dst, m.Src, m.Seq)
		}
	}
	if partitionAt.IsZero() || reconnectAt.IsZero() {
		t.Fatal("partition or reconnect did not happen")
	}
	if end.Sub(partitionAt) < 2*time.Second {
		t.Fatalf("partition at %v, run ended at %v: the partition did not hold messages back", partitionAt.Sub(start), end.Sub(start))
	}
	t.Logf("%d messages, %v of fake time (partition at %v, reconnect at %v)",
		delivered.Load(), end.Sub(start), partitionAt.Sub(start), reconnectAt.Sub(start))
}
