package transport

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
)

// A host declared dead that comes back, still of the old incarnation,
// cannot inject the messages in its log: its links are refused (counted,
// logged once), while the host that replaced it, restored into the new
// incarnation, gets through. A peer of a newer incarnation is refused too.
func TestEndpointIncarnation(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var mu sync.Mutex
		var lines []string
		var downs []error
		cfg := EndpointConfig{Route: routeMod("a", "b"), Incarnation: 1,
			Logf: func(format string, args ...any) {
				mu.Lock()
				lines = append(lines, fmt.Sprintf(format, args...))
				mu.Unlock()
			},
			OnLinkDown: func(_ HostID, err error) {
				mu.Lock()
				downs = append(downs, err)
				mu.Unlock()
			}}
		cfg.Host = "a"
		a1 := newTestEndpoint(t, cfg)
		cfg.Host = "b"
		b1 := newTestEndpoint(t, cfg)
		la, lb := Pipe()
		a1.AddLink("b", la)
		b1.AddLink("a", lb)
		b1.Send(1, 0, 0, []byte("m1"))
		take(t, a1, 0, 1, Any)
		acut, _ := a1.Snapshot([]uint32{0})
		bcut, _ := b1.Snapshot([]uint32{1})
		b1.Close()
		a1.Close()
		mu.Lock()
		downs = nil
		mu.Unlock()

		// Incarnation 2: a restored from the cut; the old b comes back
		// three times with a message of its log.
		cfg.Host, cfg.Incarnation = "a", 2
		a2 := newTestEndpoint(t, cfg)
		if err := a2.Restore(acut); err != nil {
			t.Fatal(err)
		}
		hello := func(inc uint64) []byte {
			return AppendFrame(nil, &Frame{Type: FrameHello, Version: FrameVersion, HostID: "b", Inc: inc})
		}
		stale := AppendFrame(hello(1), &Frame{Type: FrameData, Src: 1, Dst: 0, Seq: 2, Payload: []byte("stale")})
		for range 3 {
			mine, theirs := Pipe()
			a2.AddLink("b", mine)
			theirs.Send(stale)
			synctest.Wait()
		}
		if m, ok := a2.TryRecv(0, Any, Any); ok {
			t.Fatalf("a stale host's message was delivered: %q", m.Data)
		}
		if n := a2.Counters().StaleLinks; n != 3 {
			t.Fatalf("%d stale links counted, want 3", n)
		}
		mu.Lock()
		if len(lines) != 1 || !strings.Contains(lines[0], "incarnation 1 of the job, this host of 2") {
			t.Fatalf("log lines %q, want one naming incarnations 1 and 2", lines)
		}
		if len(downs) != 3 || !errors.Is(downs[0], ErrStale) {
			t.Fatalf("link downs %v, want 3 of ErrStale", downs)
		}
		downs = nil
		mu.Unlock()

		// A peer already of incarnation 3 is refused as well.
		mine, theirs := Pipe()
		a2.AddLink("b", mine)
		theirs.Send(hello(3))
		synctest.Wait()
		mu.Lock()
		if len(downs) != 1 || !errors.Is(downs[0], ErrHandshake) || !strings.Contains(downs[0].Error(), "incarnation 3 of the job already") {
			t.Fatalf("link downs %v, want one refusing incarnation 3", downs)
		}
		mu.Unlock()

		// b's replacement, restored into incarnation 2, gets through: its
		// log is sent again (a duplicate for a), then new messages.
		cfg.Host = "b"
		b2 := newTestEndpoint(t, cfg)
		if err := b2.Restore(bcut); err != nil {
			t.Fatal(err)
		}
		la, lb = Pipe()
		a2.AddLink("b", la)
		b2.AddLink("a", lb)
		b2.Send(1, 0, 0, []byte("new"))
		if m := take(t, a2, 0, 1, Any); string(m.Data) != "new" || m.Seq != 2 {
			t.Fatalf("after recovery: %q seq %d, want \"new\" seq 2", m.Data, m.Seq)
		}
	})
}
