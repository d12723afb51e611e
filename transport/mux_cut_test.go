package transport

import (
	"errors"
	"slices"
	"testing"
	"testing/synctest"
	"time"
)

// holdLoop returns a config whose Endpoint's loop, once a message of rank
// 2 in epoch 5 reaches rank 3 (hold), stands still in OnEpochAhead until
// release is closed; entered is closed when it does.
func holdLoop() (cfg EndpointConfig, hold func(*Endpoint), entered, release chan struct{}) {
	entered, release = make(chan struct{}), make(chan struct{})
	cfg = EndpointConfig{Host: "a", Route: routeMod("a"), HoldLaterEpochs: true,
		OnEpochAhead: func(rank uint32, epoch uint64) {
			if rank == 3 && epoch == 5 {
				close(entered)
				<-release
			}
		}}
	hold = func(e *Endpoint) {
		e.SetEpoch(2, 5)
		if err := e.Send(2, 3, 1, []byte("holds the loop")); err != nil {
			panic(err)
		}
		<-entered
	}
	return cfg, hold, entered, release
}

// cutOf takes rank's cut of epoch on e and waits for its completion.
func cutOf(t *testing.T, e *Endpoint, rank uint32, epoch uint64) RankState {
	t.Helper()
	c, err := e.CutRank(rank, epoch)
	if err != nil {
		t.Fatal(err)
	}
	st, err := c.State()
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// A rank's cut is taken while the Endpoint's loop cannot run; the loop
// completes it later, without what the rank sent and was delivered in the
// meantime; a restore from it gives each message exactly once.
func TestCutRankWhileLoopHeld(t *testing.T) {
	cfg, hold, _, release := holdLoop()
	a := newTestEndpoint(t, cfg)
	for _, s := range []string{"a1", "a2"} {
		if err := a.Send(0, 1, 1, []byte(s)); err != nil {
			t.Fatal(err)
		}
	}
	if m := take(t, a, 1, 0, 1); string(m.Data) != "a1" {
		t.Fatalf("took %q", m.Data)
	}
	if _, err := a.Snapshot(nil); err != nil { // a2 is in rank 1's inbox
		t.Fatal(err)
	}
	hold(a)
	cut, err := a.CutRank(1, 1)
	if err != nil {
		t.Fatal(err)
	}
	// Rank 1 goes on while the loop stands still: it sends in epoch 1,
	// and rank 0 sends it a3, which the loop delivers before it completes
	// the cut.
	if err := a.Send(1, 0, 2, []byte("b1")); err != nil {
		t.Fatal(err)
	}
	if err := a.Send(0, 1, 1, []byte("a3")); err != nil {
		t.Fatal(err)
	}
	close(release)
	for _, w := range []string{"a2", "a3"} {
		if m := take(t, a, 1, 0, 1); string(m.Data) != w {
			t.Fatalf("rank 1 took %q, want %q", m.Data, w)
		}
	}
	st, err := cut.State()
	if err != nil {
		t.Fatal(err)
	}
	if st.Epoch != 1 || len(st.Inbox) != 1 || string(st.Inbox[0].Data) != "a2" {
		t.Fatalf("cut: epoch %d, inbox %+v; want epoch 1 and a2", st.Epoch, st.Inbox)
	}
	if len(st.Recvs) != 1 || st.Recvs[0].Src != 0 || st.Recvs[0].Delivered != 2 {
		t.Fatalf("cut's receiving halves %+v, want 0->1 delivered 2", st.Recvs)
	}
	if len(st.Sends) != 1 || st.Sends[0].Next != 1 || len(st.Sends[0].Entries)+len(st.Sends[0].Queued) != 0 {
		t.Fatalf("cut's sending halves %+v, want 1->0 with nothing sent", st.Sends)
	}
	st0 := cutOf(t, a, 0, 1)

	b := newTestEndpoint(t, EndpointConfig{Host: "a", Route: routeMod("a"), HoldLaterEpochs: true})
	if err := b.Restore(decodeStates(t, encodeStates([]RankState{st0, st}))); err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{"a2", "a3"} {
		if m := take(t, b, 1, 0, 1); string(m.Data) != w {
			t.Fatalf("after the restore rank 1 took %q, want %q", m.Data, w)
		}
	}
	if m, ok := b.TryRecv(0, Any, Any); ok {
		t.Fatalf("after the restore rank 0 has %q, sent after the cut", m.Data)
	}
	if err := b.Send(1, 0, 2, []byte("b1")); err != nil {
		t.Fatal(err)
	}
	if m := take(t, b, 0, 1, 2); string(m.Data) != "b1" || m.Seq != 1 || m.Epoch != 1 {
		t.Fatalf("b1 sent again: %q seq %d epoch %d, want seq 1 epoch 1", m.Data, m.Seq, m.Epoch)
	}
}

// A cut must move its rank to a later epoch: otherwise what it sends
// afterwards could not be told from the cut's.
func TestCutRankEpochMustGrow(t *testing.T) {
	a := newTestEndpoint(t, EndpointConfig{Host: "a", Route: routeMod("a")})
	a.SetEpoch(0, 3)
	if _, err := a.CutRank(0, 3); !errors.Is(err, ErrBadState) {
		t.Fatalf("cut at the rank's own epoch: %v, want ErrBadState", err)
	}
}

// A sender's cut leaves out of its log the messages its receiver on
// another host had before the receiver's own cut of the same epoch (its
// acks say so), and keeps those it had after: a restore of both cuts
// gives each message exactly once. Once a rank's state is taken to go on
// elsewhere (Snapshot), its acks claim nothing until it stays (Stayed).
func TestCutLeavesOutWhatReceiverCutHolds(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a, b := pipeEndpoints(t, EndpointConfig{}, nil)
		send := func(msgs ...string) {
			t.Helper()
			for _, m := range msgs {
				if err := a.Send(0, 1, 1, []byte(m)); err != nil {
					t.Fatal(err)
				}
			}
			synctest.Wait() // delivered at b, acked back
		}
		send("m1", "m2")
		take(t, b, 1, 0, 1)        // m1 taken, m2 waits in the inbox
		c1, err := b.CutRank(1, 1) // rank 1's cut of epoch 1: m1, m2
		if err != nil {
			t.Fatal(err)
		}
		send("m3") // had by rank 1 in epoch 1: after its cut
		st1, err := c1.State()
		if err != nil {
			t.Fatal(err)
		}
		st0 := cutOf(t, a, 0, 1)
		if len(st0.Sends) != 1 || st0.Sends[0].Next != 4 || !slices.Equal(seqs(st0.Sends[0].Entries), []uint64{3}) {
			t.Fatalf("rank 0's cut logs %+v, want m3 alone (next 4)", st0.Sends)
		}

		// Both cuts restored on another pair of hosts: rank 1 has m2 in
		// its inbox and gets m3 from rank 0's log, once each.
		a2, b2 := pipeEndpoints(t, EndpointConfig{}, nil)
		if err := a2.Restore([]RankState{st0}); err != nil {
			t.Fatal(err)
		}
		if err := b2.Restore([]RankState{st1}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Second) // rank 0's retransmission timer sends its log
		synctest.Wait()
		for _, want := range []string{"m2", "m3"} {
			if m := take(t, b2, 1, 0, 1); string(m.Data) != want {
				t.Fatalf("restored rank 1 took %q, want %q", m.Data, want)
			}
		}
		if m, ok := b2.TryRecv(1, Any, Any); ok {
			t.Fatalf("restored rank 1 has %q too", m.Data)
		}

		// Rank 1's state taken to go on elsewhere: what it has after it
		// is not claimed for any cut, so rank 0's next cut keeps it.
		if _, err := b.Snapshot([]uint32{1}); err != nil {
			t.Fatal(err)
		}
		send("m4")
		st0 = cutOf(t, a, 0, 2)
		if got := seqs(st0.Sends[0].Entries); !slices.Contains(got, 4) {
			t.Fatalf("rank 0's cut of 2 logs %v: m4, which rank 1 had after its state left, is missing", got)
		}
		// Its move called off, rank 1 runs on here with all it had: its
		// acks claim its cuts again.
		b.Stayed(1)
		send("m5")
		if got := seqs(cutOf(t, a, 0, 3).Sends[0].Entries); len(got) != 0 {
			t.Fatalf("rank 0's cut of 3 logs %v, which rank 1, in epoch 1 and staying, has had", got)
		}
	})
}
