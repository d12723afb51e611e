package job

import (
	"context"
	"testing"
	"time"

	"github.com/librahost/librahost/transport"
)

func localEndpoint(t *testing.T) *transport.Endpoint {
	t.Helper()
	ep, err := transport.NewEndpoint(transport.EndpointConfig{
		Host:  "local",
		Route: func(uint32) transport.HostID { return "local" },
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ep.Close() })
	return ep
}

// After a restore from the cut of epoch e, every message carries its
// sender's epoch, e, not the epoch before the cut.
func TestCutEpochAfterRestore(t *testing.T) {
	ctx := context.Background()
	ep := localEndpoint(t)
	ep.SetEpoch(0, 3)
	ep.SetEpoch(1, 3)
	if err := ep.Send(0, 1, 7, []byte("before")); err != nil {
		t.Fatal(err)
	}
	cut, err := cutAt(ep, []int{0, 1}, 4)
	if err != nil {
		t.Fatal(err)
	}
	// The same endpoint goes on in epoch 4.
	if err := ep.Send(0, 1, 7, []byte("after")); err != nil {
		t.Fatal(err)
	}
	for want, e := range []uint64{3, 4} {
		if m, err := ep.Recv(ctx, 1, 0, 7); err != nil || m.Epoch != uint64(want)+3 {
			t.Fatalf("message %d: epoch %d (%v), want %d", want, m.Epoch, err, e)
		}
	}
	// A new process restores the cut: its messages carry epoch 4 too.
	again := localEndpoint(t)
	if err := again.Restore(cut); err != nil {
		t.Fatal(err)
	}
	if err := again.Send(1, 0, 8, []byte("restored")); err != nil {
		t.Fatal(err)
	}
	m, err := again.Recv(ctx, 0, 1, 8)
	if err != nil || m.Epoch != 4 {
		t.Fatalf("a message sent after the restore carries epoch %d (%v), want 4", m.Epoch, err)
	}
	if m, err := again.Recv(ctx, 1, 0, 7); err != nil || m.Epoch != 3 || string(m.Data) != "before" {
		t.Fatalf("the message in flight at the cut: %q epoch %d (%v)", m.Data, m.Epoch, err)
	}
}

// A rank's cut does not wait for the Endpoint's loop, which stands still
// here (on a busy host it waits for a core behind the ranks that
// compute): the rank goes on, in the new epoch, and the cut is completed
// once the loop runs again.
func TestTakeCutWhileLoopHeld(t *testing.T) {
	entered, release := make(chan struct{}), make(chan struct{})
	ep, err := transport.NewEndpoint(transport.EndpointConfig{
		Host:            "local",
		Route:           func(uint32) transport.HostID { return "local" },
		HoldLaterEpochs: true,
		OnEpochAhead: func(rank uint32, epoch uint64) {
			if rank == 1 && epoch == 9 {
				close(entered)
				<-release
			}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ep.Close() })
	defer func() {
		select {
		case <-release:
		default:
			close(release)
		}
	}()
	ep.SetEpoch(0, 9)
	if err := ep.Send(0, 1, 7, []byte("holds the loop")); err != nil {
		t.Fatal(err)
	}
	<-entered
	type taken struct {
		cut func() (transport.RankState, error)
		err error
	}
	done := make(chan taken, 1)
	go func() {
		cut, err := takeCut(ep, 2, 1)
		done <- taken{cut, err}
	}()
	var tk taken
	select {
	case tk = <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("rank 2's cut waited for the Endpoint's loop, held by another rank's message")
	}
	if tk.err != nil {
		t.Fatal(tk.err)
	}
	if err := ep.Send(2, 0, 7, []byte("after the cut")); err != nil {
		t.Fatal(err)
	}
	close(release)
	st, err := tk.cut()
	if err != nil {
		t.Fatal(err)
	}
	if st.Rank != 2 || st.Epoch != 1 || len(st.Sends) != 1 || st.Sends[0].Next != 1 {
		t.Fatalf("rank 2's cut %+v: want epoch 1 and nothing sent", st)
	}
	m, err := ep.Recv(context.Background(), 0, 2, 7)
	if err != nil || m.Epoch != 1 {
		t.Fatalf("rank 2's message after the cut: epoch %d (%v), want 1", m.Epoch, err)
	}
}

// A rank moved on to the epoch already (it skipped a failed round) has
// its cut of the epoch taken on the loop, with what it sent in the epoch
// before it.
func TestTakeCutInEpochAlready(t *testing.T) {
	ep := localEndpoint(t)
	ep.SetEpoch(2, 5)
	if err := ep.Send(2, 0, 7, []byte("in epoch 5")); err != nil {
		t.Fatal(err)
	}
	cut, err := takeCut(ep, 2, 5)
	if err != nil {
		t.Fatal(err)
	}
	st, err := cut()
	if err != nil {
		t.Fatal(err)
	}
	// The message is before the cut (Next 2); its log leaves it out, as
	// rank 0 had it in epoch 0 and so holds it in its own cut of 5.
	if st.Epoch != 5 || len(st.Sends) != 1 || st.Sends[0].Next != 2 || len(st.Sends[0].Entries) != 0 {
		t.Fatalf("cut %+v: want epoch 5 with the message sent before it, had by its receiver", st)
	}
}
