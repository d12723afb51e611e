package job

import (
	"context"
	"testing"

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
