package transport

import (
	"testing"
	"testing/synctest"
)

// TestEndpointTrySend: with no link to the destination's host, TrySend
// refuses once the window is full, and the sender's inbox channel says
// when acks have made room.
func TestEndpointTrySend(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := EndpointConfig{Route: routeMod("a", "b"), Sender: SenderConfig{Window: 100}}
		cfg.Host = "a"
		a := newTestEndpoint(t, cfg)
		cfg.Host = "b"
		b := newTestEndpoint(t, cfg)
		for i := range 3 {
			ok, err := a.TrySend(0, 1, 0, make([]byte, 40))
			if err != nil || ok != (i < 2) {
				t.Fatalf("send %d: ok %v, %v; want the third refused (window 100, 40 B each)", i, ok, err)
			}
		}
		synctest.Wait()
		select {
		case <-a.Inbox(0):
			t.Fatal("sender woken before its window opened")
		default:
		}
		la, lb := Pipe()
		a.AddLink("b", la)
		b.AddLink("a", lb)
		<-a.Inbox(0)
		if ok, err := a.TrySend(0, 1, 0, make([]byte, 40)); !ok || err != nil {
			t.Fatalf("send after the window opened: ok %v, %v", ok, err)
		}
	})
}
