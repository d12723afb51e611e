package jobctl

import (
	"context"
	"errors"
	"net"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/librahost/librahost/ckpt"
)

// pipeNet connects Endpoints over net.Pipe streams, so that they run in a
// synctest bubble: participants dial the coordinator's Endpoint as the
// Hub would route them.
type pipeNet struct {
	mu    sync.Mutex
	coord *Endpoint
	names []string
	taps  map[string]*tap // the coordinator's end of each host's newest stream
}

func (n *pipeNet) config(self ckpt.HostID, ft time.Duration) Config {
	return Config{Job: "j", Hosts: n.names, Self: self, Coordinator: 0, FailureTimeout: ft,
		Logf: func(string, ...any) {}, Dial: n.dialer(n.names[self])}
}

func (n *pipeNet) dialer(from string) func(context.Context) (string, Stream, error) {
	return func(ctx context.Context) (string, Stream, error) {
		n.mu.Lock()
		c := n.coord
		n.mu.Unlock()
		if c == nil || c.ctx.Err() != nil {
			return "", nil, errors.New("unreachable")
		}
		a, b := net.Pipe()
		t := &tap{Stream: b}
		n.mu.Lock()
		n.taps[from] = t
		n.mu.Unlock()
		go func() {
			f, err := readFrame(t)
			if err != nil || c.accept(from, t, f) != nil {
				t.Close()
			}
		}()
		return n.names[0], a, nil
	}
}

// newPipeJob opens the Endpoints of a job of n hosts, h0 the coordinator.
func newPipeJob(t *testing.T, hosts int, ft time.Duration) (*pipeNet, []*Endpoint) {
	n := &pipeNet{taps: map[string]*tap{}}
	for h := range hosts {
		n.names = append(n.names, string(rune('a'+h)))
	}
	eps := make([]*Endpoint, hosts)
	for h := range eps {
		e, err := New(n.config(ckpt.HostID(h), ft))
		if err != nil {
			t.Fatal(err)
		}
		eps[h] = e
		if h == 0 {
			n.coord = e
		}
	}
	return n, eps
}

// tap counts the frames written on a stream by kind.
type tap struct {
	Stream
	mu    sync.Mutex
	kinds map[uint8]int
}

func (t *tap) Write(p []byte) (int, error) {
	t.mu.Lock()
	if t.kinds == nil {
		t.kinds = map[uint8]int{}
	}
	for b := p; len(b) >= 6; {
		t.kinds[b[5]]++
		b = b[4+int(b[0])<<24|int(b[1])<<16|int(b[2])<<8|int(b[3]):]
	}
	t.mu.Unlock()
	return t.Stream.Write(p)
}

func (t *tap) count(kind uint8) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.kinds[kind]
}

func marker(from, to ckpt.HostID, e uint64) ckpt.Msg {
	return ckpt.Msg{Kind: ckpt.MsgMarker, From: from, To: to, Epoch: e}
}

// recvN takes n messages from e.
func recvN(t *testing.T, e *Endpoint, n int) []Received {
	t.Helper()
	var out []Received
	for range n {
		r, ok := <-e.Recv()
		if !ok {
			t.Fatalf("Recv closed after %d of %d messages", len(out), n)
		}
		out = append(out, r)
	}
	return out
}

// TestEndpointStreamBreaks: messages both ways arrive once and in order
// while the stream between the hosts is broken again and again; what a
// broken stream lost is sent again on the next.
func TestEndpointStreamBreaks(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		_, eps := newPipeJob(t, 2, 2*time.Second)
		defer eps[0].Close()
		defer eps[1].Close()
		const n = 200
		go func() {
			for i := 1; i <= n; i++ {
				eps[0].Send(1, marker(0, 1, uint64(i)))
				eps[1].Send(0, ckpt.Msg{Kind: ckpt.MsgDone, From: 1, To: 0, Epoch: uint64(i), Digests: []ckpt.RankDigest{}})
				if i%17 == 0 {
					eps[1].peers[0].closeConn() // as a network failure would
				}
				if i%5 == 0 {
					time.Sleep(30 * time.Millisecond)
				}
			}
		}()
		for h, e := range []*Endpoint{eps[1], eps[0]} {
			for i, r := range recvN(t, e, n) {
				if r.Msg.Epoch != uint64(i+1) || r.From != ckpt.HostID(h) {
					t.Fatalf("h%d: message %d is %v from h%d", 1-h, i+1, r.Msg, r.From)
				}
			}
		}
		// Nothing more: no duplicates are delivered later.
		time.Sleep(5 * time.Second)
		synctest.Wait()
		for _, e := range eps {
			select {
			case r := <-e.Recv():
				t.Fatalf("a message delivered again: %v", r.Msg)
			default:
			}
		}
	})
}

// TestEndpointSelf: a message to this host comes back on Recv; one to a
// host a participant has no stream to is refused.
func TestEndpointSelf(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		_, eps := newPipeJob(t, 3, time.Second)
		for _, e := range eps {
			defer e.Close()
		}
		if err := eps[0].Send(0, marker(0, 0, 4)); err != nil {
			t.Fatal(err)
		}
		if r := recvN(t, eps[0], 1)[0]; r.From != 0 || r.Msg.Epoch != 4 {
			t.Fatalf("got %v from h%d", r.Msg, r.From)
		}
		if err := eps[1].Send(2, marker(1, 2, 1)); !errors.Is(err, ErrNotInJob) {
			t.Fatalf("participant to participant: %v", err)
		}
		if err := eps[0].Send(3, marker(0, 3, 1)); !errors.Is(err, ErrNotInJob) {
			t.Fatalf("to a host outside the job: %v", err)
		}
		eps[2].Close()
		if err := eps[2].Send(0, marker(2, 0, 1)); !errors.Is(err, ErrClosed) {
			t.Fatalf("after Close: %v", err)
		}
	})
}

// TestEndpointBeats: a stream that carries messages more often than a
// quarter of the failure timeout carries no heartbeat; an idle one carries
// one per quarter, and keeps both hosts heard.
func TestEndpointBeats(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const ft = 2 * time.Second
		n, eps := newPipeJob(t, 2, ft)
		defer eps[0].Close()
		defer eps[1].Close()
		for i := range 40 {
			eps[0].Send(1, marker(0, 1, uint64(i+1)))
			time.Sleep(ft / 8)
		}
		recvN(t, eps[1], 40)
		n.mu.Lock()
		tp := n.taps["b"]
		n.mu.Unlock()
		if b := tp.count(kindBeat); b != 0 {
			t.Fatalf("%d heartbeats on a busy stream", b)
		}
		start := time.Now()
		time.Sleep(10 * ft)
		if b := tp.count(kindBeat); b < 39 || b > 41 {
			t.Fatalf("%d heartbeats in %v of silence, want 40", b, 10*ft)
		}
		for h, e := range eps {
			if at := e.LastHeard(ckpt.HostID(1 - h)); at.Before(start.Add(10*ft - ft/4)) {
				t.Fatalf("h%d last heard h%d at +%v", h, 1-h, at.Sub(start))
			}
		}
	})
}

// TestEndpointDropsStale: frames of another job, or of an incarnation
// older than this host's, are dropped unheard; newer ones are taken.
func TestEndpointDropsStale(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		_, eps := newPipeJob(t, 2, time.Hour)
		eps[1].Close() // the test speaks for h1
		c := eps[0]
		defer c.Close()
		c.SetInc(5)
		c.SetInc(3) // never lowers it
		a, b := net.Pipe()
		defer a.Close()
		go c.accept("b", b, frame{kind: kindHello, inc: 4, job: "j", body: helloBody(7)})
		if f, err := readFrame(a); err != nil || f.kind != kindHello || f.inc != 5 {
			t.Fatalf("HELLO answered with %v, %v", f, err)
		}
		body := func(e uint64) []byte {
			return ckpt.AppendMsg(nil, ckpt.Msg{Kind: ckpt.MsgDone, From: 1, Inc: 5, Epoch: e, Digests: []ckpt.RankDigest{}})
		}
		send := func(f frame) {
			if _, err := a.Write(appendFrame(nil, f)); err != nil {
				t.Fatal(err)
			}
		}
		send(frame{kind: kindMsg, inc: 5, seq: 1, job: "other", body: body(1)})
		send(frame{kind: kindBeat, inc: 9, job: "other"})
		send(frame{kind: kindMsg, inc: 4, seq: 1, job: "j", body: body(2)})
		send(frame{kind: kindBeat, inc: 4, job: "j"})
		synctest.Wait()
		if at := c.LastHeard(1); !at.IsZero() {
			t.Fatalf("h1 heard at %v from stale frames", at)
		}
		send(frame{kind: kindMsg, inc: 6, seq: 2, job: "j", body: body(3)})
		if r := recvN(t, c, 1)[0]; r.Msg.Epoch != 3 {
			t.Fatalf("took %v", r.Msg)
		}
		if c.LastHeard(1).IsZero() {
			t.Fatal("h1 not heard from a frame of a newer incarnation")
		}
		// A message claiming to come from another host ends the stream.
		send(frame{kind: kindMsg, inc: 6, seq: 3, job: "j",
			body: ckpt.AppendMsg(nil, ckpt.Msg{Kind: ckpt.MsgDone, From: 2})})
		if _, err := readFrame(a); err == nil {
			t.Fatal("the stream outlived a forged message")
		}
	})
}

// TestEndpointPeerRestarts: a participant host whose process restarts (a
// new Endpoint, so a new instance) gets the coordinator's messages from
// then on, numbered afresh, and its own are taken; what was queued for
// the old process is not delivered to the new one.
func TestEndpointPeerRestarts(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n, eps := newPipeJob(t, 2, 2*time.Second)
		defer eps[0].Close()
		for i := range 3 {
			eps[0].Send(1, marker(0, 1, uint64(i+1)))
			eps[1].Send(0, marker(1, 0, uint64(i+1)))
		}
		recvN(t, eps[1], 3)
		recvN(t, eps[0], 3)
		synctest.Wait()
		eps[1].Close()
		eps[0].Send(1, marker(0, 1, 99)) // for the old process
		synctest.Wait()
		again, err := New(n.config(1, 2*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		defer again.Close()
		time.Sleep(time.Second) // it dials and says HELLO
		eps[0].Send(1, marker(0, 1, 4))
		again.Send(0, marker(1, 0, 4))
		if r := recvN(t, again, 1)[0]; r.Msg.Epoch != 4 {
			t.Fatalf("the new process got %v", r.Msg)
		}
		if r := recvN(t, eps[0], 1)[0]; r.Msg.Epoch != 4 {
			t.Fatalf("the coordinator got %v", r.Msg)
		}
	})
}
