package transport

import (
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

// Without a way to force a checkpoint, a send past MaxLogBytes fails in
// one line that says what to do; a commit makes room again.
func TestEndpointLogFullError(t *testing.T) {
	e := newTestEndpoint(t, EndpointConfig{Host: "a", Route: routeMod("a"), MaxLogBytes: 1000})
	msg := make([]byte, 100)
	for range 10 {
		if err := e.Send(0, 1, 0, msg); err != nil {
			t.Fatal(err)
		}
	}
	for range 10 {
		take(t, e, 1, 0, Any)
	}
	err := e.Send(0, 1, 0, msg)
	if !errors.Is(err, ErrLogFull) || !strings.Contains(err.Error(), "MaxLogBytes") || strings.Contains(err.Error(), "\n") {
		t.Fatalf("send past the limit: %v", err)
	}
	if ok, err := e.TrySend(0, 1, 0, msg); ok || !errors.Is(err, ErrLogFull) {
		t.Fatalf("TrySend past the limit: %v %v", ok, err)
	}
	if n := e.LogBytes(); n != 1000 {
		t.Fatalf("a refused send changed the logs: %d bytes", n)
	}
	commitRanks(t, e, 1)
	waitFor(t, "the commit", func() bool { return e.LogBytes() == 0 })
	if err := e.Send(0, 1, 0, msg); err != nil {
		t.Fatalf("after a commit: %v", err)
	}
	// Runs without checkpoints have no limit: acks make messages stable.
	f := newTestEndpoint(t, EndpointConfig{Host: "a", Route: routeMod("a"), MaxLogBytes: 1000, StableOnAck: true})
	for range 30 {
		if err := f.Send(0, 1, 0, msg); err != nil {
			t.Fatal(err)
		}
		take(t, f, 1, 0, Any)
	}
}

// Past MaxLogBytes the host is told once, and forces a checkpoint; sends
// go on up to twice the limit and then wait for its commit. The logs never
// pass twice the limit and every message arrives.
func TestEndpointLogFullForcesCheckpoint(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var told atomic.Int32
		var a, b *Endpoint
		const limit, size, n = 1000, 100, 100
		a, b = pipeEndpoints(t, EndpointConfig{MaxLogBytes: limit, OnLogFull: func(bytes int64) {
			if bytes < limit {
				t.Errorf("OnLogFull told %d bytes, under the limit", bytes)
			}
			told.Add(1)
			go func() { // the host forces a checkpoint of the receiver
				if st, err := b.Snapshot([]uint32{1}); err == nil {
					b.StableCut(st)
				}
			}()
		}}, nil)
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range n {
				m := take(t, b, 1, 0, Any)
				if m.Seq != uint64(i+1) {
					t.Errorf("message %d has seq %d", i, m.Seq)
					return
				}
			}
		}()
		msg := make([]byte, size)
		var most int64
		for range n {
			if err := a.Send(0, 1, 0, msg); err != nil {
				t.Fatal(err)
			}
			most = max(most, a.LogBytes())
		}
		wg.Wait()
		if most > 2*limit {
			t.Fatalf("the logs reached %d bytes, limit %d", most, limit)
		}
		if k := told.Load(); k < 2 || k > 2*n*size/limit {
			t.Fatalf("OnLogFull told %d times for %d bytes sent, limit %d", k, n*size, limit)
		}
		// TrySend past twice the limit returns false, and the sender's
		// inbox is told once a commit made room.
		for a.LogBytes()+size <= 2*limit {
			if ok, err := a.TrySend(0, 1, 0, msg); !ok || err != nil {
				t.Fatalf("TrySend under twice the limit: %v %v", ok, err)
			}
		}
		if ok, err := a.TrySend(0, 1, 0, msg); ok || err != nil {
			t.Fatalf("TrySend past twice the limit: %v %v", ok, err)
		}
		for a.LogBytes() > 0 {
			if _, ok := b.TryRecv(1, Any, Any); !ok {
				time.Sleep(time.Second) // the commit, then its ack
				synctest.Wait()
				commitRanks(t, b, 1)
			}
		}
		select {
		case <-a.Inbox(0):
		default:
			t.Fatal("a refused TrySend was not told of room")
		}
	})
}

// An ended rank's inbox does not grow: what reaches it is acked and
// dropped, and its checkpoint still counts it delivered.
func TestEndpointEndedInbox(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, b := pipeEndpoints(t, EndpointConfig{}, nil)
		msg := make([]byte, 100)
		a.Send(0, 1, 0, msg)
		synctest.Wait()
		b.Ended(1)
		for range 9 {
			a.Send(0, 1, 0, msg)
		}
		synctest.Wait()
		if m, ok := b.TryRecv(1, Any, Any); ok {
			t.Fatalf("an ended rank's inbox holds seq %d", m.Seq)
		}
		if c := b.Counters(); c.Discarded != 10 {
			t.Fatalf("%d messages discarded, want 10", c.Discarded)
		}
		st, _ := b.Snapshot([]uint32{1})
		if len(st[0].Inbox) != 0 || len(st[0].Recvs) != 1 || st[0].Recvs[0].Delivered != 10 {
			t.Fatalf("ended rank's state: %+v", st[0])
		}
		b.StableCut(st)
		a.Send(0, 1, 0, msg)
		synctest.Wait()
		if n := a.LogBytes(); n != 100 {
			t.Fatalf("after the ended rank's commit the log holds %d bytes, want 100", n)
		}
	})
}
