package transport

import (
	"context"
	"testing"
	"testing/synctest"
)

// TestEndpointHoldsLaterEpochs: a message stamped with an epoch its
// receiver has not reached waits, on one host and between two, until the
// receiver's epoch does; OnEpochAhead is told once per epoch.
func TestEndpointHoldsLaterEpochs(t *testing.T) {
	for _, remote := range []bool{false, true} {
		synctest.Test(t, func(t *testing.T) {
			hosts := []HostID{"a"}
			if remote {
				hosts = append(hosts, "b")
			}
			ahead := make(chan [2]uint64, 8)
			cfg := EndpointConfig{Route: routeMod(hosts...), HoldLaterEpochs: true,
				OnEpochAhead: func(r uint32, e uint64) { ahead <- [2]uint64{uint64(r), e} }}
			cfg.Host = "a"
			a := newTestEndpoint(t, cfg)
			b := a
			if remote {
				cfg.Host = "b"
				b = newTestEndpoint(t, cfg)
				la, lb := Pipe()
				a.AddLink("b", la)
				b.AddLink("a", lb)
			}
			a.SetEpoch(0, 2)
			a.Send(0, 1, 7, []byte("e2 first"))
			a.Send(0, 1, 7, []byte("e2 second"))
			a.SetEpoch(0, 3)
			a.Send(0, 1, 7, []byte("e3"))
			synctest.Wait()
			if _, ok := b.TryRecv(1, Any, Any); ok {
				t.Fatal("a message of epoch 2 reached a rank of epoch 0")
			}
			if got := <-ahead; got != [2]uint64{1, 2} {
				t.Fatalf("OnEpochAhead %v, want rank 1 epoch 2", got)
			}
			b.SetEpoch(1, 2)
			for _, want := range []string{"e2 first", "e2 second"} {
				m, err := b.Recv(context.Background(), 1, 0, Any)
				if err != nil || string(m.Data) != want {
					t.Fatalf("after epoch 2: %q %v, want %q", m.Data, err, want)
				}
			}
			synctest.Wait()
			if m, ok := b.TryRecv(1, Any, Any); ok {
				t.Fatalf("%q (epoch 3) reached a rank of epoch 2", m.Data)
			}
			if got := <-ahead; got != [2]uint64{1, 3} {
				t.Fatalf("OnEpochAhead %v, want rank 1 epoch 3", got)
			}
			if len(ahead) != 0 {
				t.Fatalf("OnEpochAhead told again: %v", <-ahead)
			}
			b.SetEpoch(1, 3)
			if m, err := b.Recv(context.Background(), 1, 0, Any); err != nil || string(m.Data) != "e3" || m.Seq != 3 {
				t.Fatalf("after epoch 3: %+v %v", m, err)
			}
		})
	}
}
