package transport

import (
	"fmt"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// Rank 1 moves from host b to host c while messages are everywhere: taken
// by its program, waiting in its inbox, acked by b, and cut off in the
// senders' logs by a partition. Every message, sent before the move or
// after, reaches its program exactly once and in order, on both channels.
func TestEndpointSetRoute(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		before := func(r uint32) HostID { return map[uint32]HostID{0: "a", 1: "b"}[r] }
		after := func(r uint32) HostID { return map[uint32]HostID{0: "a", 1: "c"}[r] }
		eps := map[HostID]*Endpoint{}
		for _, h := range []HostID{"a", "b", "c"} {
			eps[h] = newTestEndpoint(t, EndpointConfig{Host: h, Route: before})
		}
		a, b, c := eps["a"], eps["b"], eps["c"]
		var ab [2]*FaultLink
		link := func(x, y HostID) {
			lx, ly := Pipe()
			fx, fy := WithFaults(lx, Faults{}), WithFaults(ly, Faults{})
			if x == "a" && y == "b" {
				ab = [2]*FaultLink{fx, fy}
			}
			eps[x].AddLink(y, fx)
			eps[y].AddLink(x, fy)
		}
		link("a", "b")
		link("a", "c")
		link("b", "c")
		send := func(e *Endpoint, src, dst uint32, i int) {
			if err := e.Send(src, dst, 0, []byte(fmt.Sprint(i))); err != nil {
				t.Fatal(err)
			}
		}
		expect := func(e *Endpoint, dst, src uint32, i int) {
			t.Helper()
			m := take(t, e, dst, int32(src), Any)
			if string(m.Data) != fmt.Sprint(i) || m.Seq != uint64(i+1) {
				t.Fatalf("%d->%d: got %q seq %d, want message %d", src, dst, m.Data, m.Seq, i)
			}
		}
		for i := range 5 {
			send(a, 0, 1, i)
		}
		send(b, 1, 0, 0)
		for i := range 3 {
			expect(b, 1, 0, i) // 3 and 4 wait in the inbox, acked
		}
		expect(a, 0, 1, 0)
		synctest.Wait()
		// b is cut off: what is sent now stays in the senders' logs.
		for _, l := range ab {
			l.Partition(time.Now().Add(time.Hour))
		}
		for i := 5; i < 8; i++ {
			send(a, 0, 1, i)
		}
		for i := 1; i < 3; i++ {
			send(b, 1, 0, i)
		}
		synctest.Wait()

		// The move: rank 1 is stopped, its state taken on b and restored
		// on c; every host follows the new route.
		st, err := b.Snapshot([]uint32{1})
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range []*Endpoint{c, a, b} {
			if err := e.SetRoute(2, after); err != nil {
				t.Fatal(err)
			}
		}
		synctest.Wait() // a's log reaches c before rank 1's state does
		if err := c.Restore(st); err != nil {
			t.Fatal(err)
		}
		for i := 8; i < 12; i++ {
			send(a, 0, 1, i)
		}
		send(c, 1, 0, 3)
		for i := 3; i < 12; i++ {
			expect(c, 1, 0, i)
		}
		for i := 1; i < 4; i++ {
			expect(a, 0, 1, i)
		}
		time.Sleep(10 * time.Second) // retransmissions, if any were due
		synctest.Wait()
		if m, ok := c.TryRecv(1, Any, Any); ok {
			t.Fatalf("rank 1 got message %q seq %d twice", m.Data, m.Seq)
		}
		if m, ok := a.TryRecv(0, Any, Any); ok {
			t.Fatalf("rank 0 got message %q seq %d twice", m.Data, m.Seq)
		}
		if m, ok := b.TryRecv(1, Any, Any); ok {
			t.Fatalf("rank 1's old host still has %q", m.Data)
		}
		if n := b.LogBytes(); n != 0 {
			t.Fatalf("rank 1's old host still logs %d bytes", n)
		}
	})
}

// Rank 1 moves to the host of rank 0, so their channels become local, and
// back again: exactly once, in order, both ways.
func TestEndpointSetRouteLocal(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		apart := routeMod("a", "b")
		together := func(uint32) HostID { return "a" }
		a, b := pipeEndpoints(t, EndpointConfig{}, nil)
		var sent, taken [2]int // by rank
		send := func(e *Endpoint, src uint32) {
			if err := e.Send(src, 1-src, 0, []byte(fmt.Sprint(sent[src]))); err != nil {
				t.Fatal(err)
			}
			sent[src]++
		}
		expect := func(e *Endpoint, dst uint32) {
			t.Helper()
			m := take(t, e, dst, int32(1-dst), Any)
			if i := taken[dst]; string(m.Data) != fmt.Sprint(i) || m.Seq != uint64(i+1) {
				t.Fatalf("%d->%d: got %q seq %d, want message %d", 1-dst, dst, m.Data, m.Seq, i)
			}
			taken[dst]++
		}
		move := func(from, to *Endpoint, route func(uint32) HostID) {
			t.Helper()
			st, err := from.Snapshot([]uint32{1})
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range []*Endpoint{to, from} {
				if err := e.SetRoute(2, route); err != nil {
					t.Fatal(err)
				}
			}
			synctest.Wait()
			if err := to.Restore(st); err != nil {
				t.Fatal(err)
			}
		}
		for range 5 {
			send(a, 0)
		}
		send(b, 1)
		send(b, 1)
		expect(b, 1)
		expect(b, 1)
		expect(a, 0)
		synctest.Wait()
		move(b, a, together)
		for range 3 {
			send(a, 0)
			send(a, 1)
		}
		for taken[1] < 6 {
			expect(a, 1)
		}
		expect(a, 0)
		move(a, b, apart)
		send(a, 0)
		send(b, 1)
		for taken[1] < sent[0] {
			expect(b, 1)
		}
		for taken[0] < sent[1] {
			expect(a, 0)
		}
		time.Sleep(10 * time.Second)
		synctest.Wait()
		if m, ok := b.TryRecv(1, Any, Any); ok {
			t.Fatalf("rank 1 got %q seq %d twice", m.Data, m.Seq)
		}
		if m, ok := a.TryRecv(0, Any, Any); ok {
			t.Fatalf("rank 0 got %q seq %d twice", m.Data, m.Seq)
		}
	})
}

// An ack that reaches a sender from the host its receiver has left (sent
// there before the move, or by a host that does not know of it yet) is
// not taken: it could cover messages the new host never got, which no
// retransmission would then send again.
func TestEndpointAckFromLeftHost(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		before := func(r uint32) HostID { return map[uint32]HostID{0: "a", 1: "b"}[r] }
		after := func(r uint32) HostID { return map[uint32]HostID{0: "a", 1: "c"}[r] }
		a := newTestEndpoint(t, EndpointConfig{Host: "a", Route: before})
		mine, theirs := Pipe()
		a.AddLink("b", mine)
		hello := AppendFrame(nil, &Frame{Type: FrameHello, Version: FrameVersion, HostID: "b"})
		if err := theirs.Send(hello); err != nil {
			t.Fatal(err)
		}
		for i := range 3 {
			if err := a.Send(0, 1, 0, []byte{byte(i)}); err != nil {
				t.Fatal(err)
			}
		}
		ack := func(cum uint64) {
			t.Helper()
			if err := theirs.Send(AppendFrame(nil, &Frame{Type: FrameAck, Src: 0, Dst: 1, Cum: cum})); err != nil {
				t.Fatal(err)
			}
			synctest.Wait()
		}
		ack(1)
		if n := a.Counters().Acked; n != 1 {
			t.Fatalf("%d messages acked by rank 1's host, want 1", n)
		}
		if err := a.SetRoute(2, after); err != nil {
			t.Fatal(err)
		}
		ack(3)
		if n := a.Counters().Acked; n != 1 {
			t.Fatalf("%d messages acked after host b's late ack, want still 1", n)
		}
	})
}

// A rank whose state is taken to go on elsewhere (Leave) acks nothing it
// is given after: such an ack, reaching its sender late (once the rank is
// back on this host, where the sender's route check lets it through),
// would stop the retransmission of a message the state never had, and
// the rank would wait for it for ever (host/jobsim seed 42377). Once it
// goes on here instead (Stayed), it acks again.
func TestEndpointLeftRankAcksNothing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a := newTestEndpoint(t, EndpointConfig{Host: "a", Route: routeMod("a", "b")})
		mine, theirs := Pipe()
		a.AddLink("b", mine)
		var mu sync.Mutex
		var acked uint64 // the highest Cum a acked to rank 1 on b
		go func() {
			for {
				b, err := theirs.Recv()
				if err != nil {
					return
				}
				fs, _ := DecodeFrames(nil, b)
				mu.Lock()
				for _, f := range fs {
					if f.Type == FrameAck {
						acked = max(acked, f.Cum)
					}
				}
				mu.Unlock()
			}
		}()
		send := func(seq uint64) uint64 {
			t.Helper()
			b := AppendFrame(nil, &Frame{Type: FrameData, Src: 1, Dst: 0, Seq: seq, Payload: []byte{byte(seq)}})
			if err := theirs.Send(b); err != nil {
				t.Fatal(err)
			}
			synctest.Wait()
			mu.Lock()
			defer mu.Unlock()
			return acked
		}
		if err := theirs.Send(AppendFrame(nil, &Frame{Type: FrameHello, Version: FrameVersion, HostID: "b"})); err != nil {
			t.Fatal(err)
		}
		if got := send(1); got != 1 {
			t.Fatalf("acked %d before the snapshot, want 1", got)
		}
		a.Leave(0)
		if _, err := a.Snapshot([]uint32{0}); err != nil {
			t.Fatal(err)
		}
		if got := send(2); got != 1 {
			t.Fatalf("rank 0's state left, yet it acked %d, beyond what its state holds (1)", got)
		}
		a.Stayed(0)
		synctest.Wait()
		if got := send(2); got != 2 {
			t.Fatalf("acked %d after Stayed, want 2", got)
		}
		theirs.Close()
	})
}
