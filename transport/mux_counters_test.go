package transport

import (
	"context"
	"testing"
	"testing/synctest"
	"time"
)

// TestEndpointCounters: the counters count what crosses links — frames
// sent, sent again after a timeout, acked, received, duplicates dropped, and
// the bytes of the buffers — and leave local channels out.
func TestEndpointCounters(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a := newTestEndpoint(t, EndpointConfig{Host: "a", Route: routeMod("a", "b")})
		mine, theirs := Pipe()
		a.AddLink("b", mine)
		hello := AppendFrame(nil, &Frame{Type: FrameHello, Version: FrameVersion, HostID: "b"})
		data := AppendFrame(nil, &Frame{Type: FrameData, Src: 1, Dst: 0, Seq: 1, Payload: []byte("hi")})
		in := append(append(hello, data...), data...) // the second copy is a duplicate
		theirs.Send(in)
		ack := AppendFrame(nil, &Frame{Type: FrameAck, Src: 0, Dst: 1, Cum: 1})
		if _, err := a.Recv(context.Background(), 0, 1, Any); err != nil {
			t.Fatal(err)
		}
		a.Send(2, 0, 0, []byte("local")) // rank 2 is on a too: not counted
		a.Send(0, 1, 0, []byte("to b"))
		// Take what a sends (its HELLO, the message, an ack) until the
		// unacked message is sent again.
		var out, got int
		for got < 2 {
			b, err := theirs.Recv()
			if err != nil {
				t.Fatal(err)
			}
			out += len(b)
			fs, err := DecodeFrames(nil, b)
			if err != nil {
				t.Fatal(err)
			}
			for _, f := range fs {
				if f.Type == FrameData {
					got++
				}
			}
			if got == 1 {
				time.Sleep(DefaultRetransmitAfter) // fake time
			}
		}
		theirs.Send(ack)
		synctest.Wait()
		theirs.Send(ack) // a duplicate ack acks nothing more
		synctest.Wait()
		c := a.Counters()
		want := Counters{Sent: 1, Resent: 1, Acked: 1, Received: 2, Duplicates: 1, BytesSent: uint64(out), BytesRecv: uint64(len(in) + 2*len(ack))}
		if c != want {
			t.Fatalf("counters %+v, want %+v", c, want)
		}
	})
}
