package transport

import (
	"context"
	"encoding/binary"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

// pipeEndpoints returns Endpoints for hosts a (even ranks) and b (odd
// ranks) joined by a Pipe, each end wrapped by wrap if not nil.
func pipeEndpoints(t *testing.T, cfg EndpointConfig, wrap func(Link) Link) (a, b *Endpoint) {
	t.Helper()
	cfg.Route = routeMod("a", "b")
	cfg.Host = "a"
	a = newTestEndpoint(t, cfg)
	cfg.Host = "b"
	b = newTestEndpoint(t, cfg)
	la, lb := Pipe()
	if wrap != nil {
		la, lb = wrap(la), wrap(lb)
	}
	a.AddLink("b", la)
	b.AddLink("a", lb)
	return a, b
}

// commitRanks stands for a committed checkpoint of ranks: their state is
// taken and declared stable at once.
func commitRanks(t *testing.T, e *Endpoint, ranks ...uint32) {
	t.Helper()
	st, err := e.Snapshot(ranks)
	if err != nil {
		t.Fatal(err)
	}
	e.StableCut(st)
}

// countLink counts the frames sent through a Link, by type.
type countLink struct {
	Link
	n *[FrameControl + 1]atomic.Int64
}

func (c countLink) Send(buf []byte) error {
	frames, err := DecodeFrames(nil, buf)
	if err != nil {
		panic(err)
	}
	for _, f := range frames {
		c.n[f.Type].Add(1)
	}
	return c.Link.Send(buf)
}

// Without StableOnAck, an acked message stays in its sender's log until
// its receiver's checkpoint commits; then the next ack of the channel
// carries the news, and a channel that stays quiet sends it on its own a
// few ticks later.
func TestEndpointStableAfterCommit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, b := pipeEndpoints(t, EndpointConfig{}, nil)
		msg := make([]byte, 100)
		for range 10 {
			a.Send(0, 1, 0, msg)
		}
		for range 10 {
			take(t, b, 1, 0, Any)
		}
		synctest.Wait()
		if c := a.Counters(); c.Acked != 10 {
			t.Fatalf("%d messages acked, want 10", c.Acked)
		}
		if n := a.LogBytes(); n != 1000 {
			t.Fatalf("acked, not committed: log holds %d bytes, want 1000", n)
		}
		commitRanks(t, b, 1)
		synctest.Wait()
		if n := a.LogBytes(); n != 1000 {
			t.Fatalf("committed, no ack since: log holds %d bytes, want 1000 (stability went in a frame of its own)", n)
		}
		a.Send(0, 1, 0, msg)
		take(t, b, 1, 0, Any)
		synctest.Wait()
		if n := a.LogBytes(); n != 100 {
			t.Fatalf("the ack after the commit: log holds %d bytes, want 100", n)
		}
		if c := b.Counters(); c.StableAcks != 0 {
			t.Fatalf("%d acks sent for stability alone, want 0", c.StableAcks)
		}
		// A commit followed by silence.
		commitRanks(t, b, 1)
		time.Sleep(10 * time.Second)
		synctest.Wait()
		if n := a.LogBytes(); n != 0 {
			t.Fatalf("quiet channel after a commit: log holds %d bytes, want 0", n)
		}
		if c := b.Counters(); c.StableAcks != 1 {
			t.Fatalf("%d acks sent for stability alone, want 1", c.StableAcks)
		}
	})
}

// Stability adds no frame of its own on channels in use: the same ping-pong
// sends exactly as many frames of each type with a commit every few rounds
// as without, and only the run with commits empties its logs.
func TestEndpointStableNoFrames(t *testing.T) {
	run := func(commitEvery int) (frames [FrameControl + 1]int64, logs [2]int64) {
		synctest.Test(t, func(t *testing.T) {
			var n [FrameControl + 1]atomic.Int64
			a, b := pipeEndpoints(t, EndpointConfig{}, func(l Link) Link { return countLink{l, &n} })
			const rounds = 200
			var wg sync.WaitGroup
			wg.Add(1)
			go func() { // rank 1 answers
				defer wg.Done()
				for i := range rounds {
					m := take(t, b, 1, 0, Any)
					b.Send(1, 0, 0, m.Data)
					if commitEvery > 0 && i%commitEvery == commitEvery-1 {
						commitRanks(t, b, 1)
					}
				}
			}()
			msg := make([]byte, 64)
			for i := range rounds {
				binary.LittleEndian.PutUint64(msg, uint64(i))
				a.Send(0, 1, 0, msg)
				take(t, a, 0, 1, Any)
				if commitEvery > 0 && i%commitEvery == commitEvery-1 {
					commitRanks(t, a, 0)
				}
			}
			wg.Wait()
			synctest.Wait()
			for i := range frames {
				frames[i] = n[i].Load()
			}
			logs = [2]int64{a.LogBytes(), b.LogBytes()}
		})
		return frames, logs
	}
	plain, plainLogs := run(0)
	committed, logs := run(10)
	if plain != committed {
		t.Fatalf("frames by type (HELLO, DATA, ACK...): %v without commits, %v with", plain[1:], committed[1:])
	}
	if plainLogs != [2]int64{200 * 64, 200 * 64} {
		t.Fatalf("logs without commits: %v bytes, want all 12800", plainLogs)
	}
	// Each side's last messages are after the other side's last commit.
	if logs[0] > 10*64 || logs[1] > 10*64 {
		t.Fatalf("logs with a commit every 10 rounds: %v bytes, want at most 640", logs)
	}
	t.Logf("frames (DATA, ACK, HELLO): %d, %d, %d either way", plain[FrameData], plain[FrameAck], plain[FrameHello])
}

// Over QUIC: the log keeps what was acked until the receiver commits.
func TestQUICEndpointsStable(t *testing.T) {
	q := newQUICEndpoints(t, EndpointConfig{})
	const n, size = 200, 100
	msg := make([]byte, size)
	for range n {
		if err := q.ea.Send(0, 1, 0, msg); err != nil {
			t.Fatal(err)
		}
	}
	for range n {
		take(t, q.eb, 1, 0, Any)
	}
	waitFor(t, "every message acked", func() bool { return q.ea.Counters().Acked == n })
	if got := q.ea.LogBytes(); got != n*size {
		t.Fatalf("acked, not committed: log holds %d bytes, want %d", got, n*size)
	}
	commitRanks(t, q.eb, 1)
	q.ea.Send(0, 1, 0, msg)
	take(t, q.eb, 1, 0, Any)
	waitFor(t, "the log to drop what the commit covers", func() bool { return q.ea.LogBytes() == size })
}

// waitFor polls cond, which an event the test caused makes true; the
// limit only ends a hang.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// Stability converges over links that lose, duplicate and reorder: three
// hosts, six ranks all sending to all, each receiver committing every 50
// messages and once at the end; then one last message per channel, whose
// acks carry the final commits: every log ends holding just those.
func TestEndpointStableFaults(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		hosts := []HostID{"a", "b", "c"}
		const workers, per = 6, 300
		route := routeMod(hosts...)
		eps := make([]*Endpoint, len(hosts))
		for i, h := range hosts {
			eps[i] = newTestEndpoint(t, EndpointConfig{Host: h, Route: route,
				Sender: SenderConfig{Window: 4 << 10, RetransmitAfter: 40 * time.Millisecond}})
		}
		faults := Faults{Drop: 0.2, Duplicate: 0.1, Reorder: 0.1, Delay: 2 * time.Millisecond, Jitter: 3 * time.Millisecond}
		for i := range hosts {
			for j := i + 1; j < len(hosts); j++ {
				a, b := Pipe()
				fa, fb := faults, faults
				fa.Seed, fb.Seed = uint64(10*i+j), uint64(10*i+j+100)
				eps[i].AddLink(hosts[j], WithFaults(a, fa))
				eps[j].AddLink(hosts[i], WithFaults(b, fb))
			}
		}
		ep := func(r uint32) *Endpoint { return eps[int(r)%len(hosts)] }
		var received, fins sync.WaitGroup
		received.Add(workers)
		fins.Add(workers)
		errs := make(chan error, 2*workers)
		for src := range uint32(workers) {
			go func() { // sends, then one last message per channel once all committed
				buf := make([]byte, 16)
				for i := range per {
					for dst := range uint32(workers) {
						if dst != src {
							binary.LittleEndian.PutUint64(buf, uint64(i))
							if err := ep(src).Send(src, dst, 0, buf); err != nil {
								errs <- err
								return
							}
						}
					}
				}
				received.Wait()
				for dst := range uint32(workers) {
					if dst != src {
						ep(src).Send(src, dst, 1, []byte("fin"))
					}
				}
			}()
			go func() {
				defer fins.Done()
				dst := src
				for i := range per * (workers - 1) {
					m, err := ep(dst).Recv(context.Background(), dst, Any, 0)
					if err != nil {
						errs <- err
						return
					}
					if m.Seq != binary.LittleEndian.Uint64(m.Data)+1 {
						errs <- fmt.Errorf("%d->%d: seq %d holds message %d", m.Src, dst, m.Seq, binary.LittleEndian.Uint64(m.Data))
						return
					}
					if i%50 == 49 {
						commitRanks(t, ep(dst), dst)
					}
				}
				commitRanks(t, ep(dst), dst)
				received.Done()
				for range workers - 1 {
					if _, err := ep(dst).Recv(context.Background(), dst, Any, 1); err != nil {
						errs <- err
						return
					}
				}
			}()
		}
		fins.Wait()
		time.Sleep(10 * time.Second) // retransmits of lost acks
		synctest.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		for i, e := range eps {
			// Two ranks per host, each with 5 channels holding "fin".
			if n := e.LogBytes(); n != 2*(workers-1)*3 {
				t.Errorf("host %s: logs hold %d bytes, want %d (the last messages)", hosts[i], n, 2*(workers-1)*3)
			}
		}
	})
}
