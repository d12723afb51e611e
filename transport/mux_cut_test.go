package transport

import (
	"errors"
	"testing"
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
	c0, err := a.CutRank(0, 1)
	if err != nil {
		t.Fatal(err)
	}
	st0, err := c0.State()
	if err != nil {
		t.Fatal(err)
	}

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
