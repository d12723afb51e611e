package transport

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

func TestSenderConfigDefaults(t *testing.T) {
	c := SenderConfig{}.withDefaults()
	if c.Window != 64<<20 || c.RetransmitAfter != 200*time.Millisecond || c.MaxRetransmitAfter != 1600*time.Millisecond {
		t.Fatalf("defaults: %+v", c)
	}
	s := NewSender(0, 1, SenderConfig{RetransmitAfter: 10 * time.Millisecond, MaxRetransmitAfter: 35 * time.Millisecond})
	for i, want := range []time.Duration{10, 20, 35, 35} {
		if got := s.rto(uint32(i)); got != want*time.Millisecond {
			t.Errorf("rto(%d) = %v, want %v", i, got, want*time.Millisecond)
		}
	}
}

func TestSenderRestoreErrors(t *testing.T) {
	cases := []struct {
		name string
		st   SenderState
	}{
		{"next zero", SenderState{}},
		{"too many entries", SenderState{Next: 2, Entries: []Entry{{Seq: 1}, {Seq: 2}}}},
		{"gap", SenderState{Next: 4, Entries: []Entry{{Seq: 1}, {Seq: 3}}}},
		{"not ending at next", SenderState{Next: 5, Entries: []Entry{{Seq: 1}, {Seq: 2}}}},
	}
	for _, c := range cases {
		s := NewSender(0, 1, SenderConfig{})
		if err := s.Restore(c.st); !errors.Is(err, ErrBadState) {
			t.Errorf("%s: got %v, want ErrBadState", c.name, err)
		}
	}
	s := NewSender(0, 1, SenderConfig{})
	if err := s.Rewind(3); !errors.Is(err, ErrBadState) {
		t.Errorf("rewind past next: %v", err)
	}
	if err := s.Restore(SenderState{Next: 10}); err != nil || s.Next() != 10 || len(s.Log()) != 0 {
		t.Errorf("empty log at next 10: %v, next %d", err, s.Next())
	}
	if !s.Send(time.Time{}, 0, 0, []byte("x")) || s.Ready()[0].Seq != 10 {
		t.Errorf("restored sender does not continue at seq 10")
	}
}

func TestReceiverIgnoresOtherChannels(t *testing.T) {
	r := NewReceiver(2, 3, ReceiverConfig{})
	for _, f := range []Frame{
		{Type: FrameData, Src: 2, Dst: 4, Seq: 1},
		{Type: FrameData, Src: 1, Dst: 3, Seq: 1},
		{Type: FrameAck, Src: 2, Dst: 3, Seq: 1},
		{Type: FrameData, Src: 2, Dst: 3, Seq: 0},
	} {
		if d, a := r.OnData(f); d != nil || a != nil {
			t.Errorf("%s: delivered %v ack %v", f.String(), d, a)
		}
	}
	if err := r.Restore(ReceiverState{Delivered: 7}); err != nil || r.Delivered() != 7 || r.Ack().Cum != 7 {
		t.Fatalf("restore: %v %d", err, r.Delivered())
	}
}

// TestChannelSimulation runs one channel over a simulated wire that drops,
// duplicates, reorders and delays frames in both directions, with
// reconnects, and checks exactly-once in-order delivery. It is
// deterministic for each seed.
func TestChannelSimulation(t *testing.T) {
	for seed := uint64(1); seed <= 20; seed++ {
		t.Run(fmt.Sprint(seed), func(t *testing.T) { simulateChannel(t, seed, 2000) })
	}
}

type inFlight struct {
	at time.Time
	f  Frame
}

func simulateChannel(t *testing.T, seed uint64, msgs int) {
	rng := rand.New(rand.NewPCG(seed, 99))
	s := NewSender(4, 5, SenderConfig{Window: 1 + int64(rng.IntN(400)), RetransmitAfter: 20 * time.Millisecond})
	r := NewReceiver(4, 5, ReceiverConfig{MaxBuffered: 1 + rng.IntN(64)})
	now := time.Unix(1000, 0)
	var wire []inFlight // both directions
	push := func(fs ...Frame) {
		for _, f := range fs {
			if rng.Float64() < 0.2 {
				continue
			}
			copies := 1
			if rng.Float64() < 0.1 {
				copies = 2
			}
			for range copies {
				wire = append(wire, inFlight{now.Add(time.Duration(rng.IntN(30)) * time.Millisecond), f})
			}
		}
	}
	sent, got := 0, 0
	stableEvery := 1 + rng.IntN(50)
	for step := 0; got < msgs; step++ {
		if step > 200*msgs {
			t.Fatalf("no progress: sent %d delivered %d acked %d", sent, got, s.Acked())
		}
		now = now.Add(time.Duration(rng.IntN(3)) * time.Millisecond)
		for sent < msgs && rng.IntN(3) > 0 {
			p := fmt.Appendf(nil, "m%d", sent+1)
			if !s.Send(now, int32(sent%7), uint64(sent/100), p) {
				break
			}
			sent++
		}
		push(s.Ready()...)
		push(s.Tick(now)...)
		if rng.IntN(500) == 0 {
			wire = wire[:0]
			push(s.OnReconnect(now)...)
		}
		// Deliver due frames in random order.
		rng.Shuffle(len(wire), func(i, j int) { wire[i], wire[j] = wire[j], wire[i] })
		keep := wire[:0]
		var due []inFlight
		for _, w := range wire {
			if now.Before(w.at) {
				keep = append(keep, w)
			} else {
				due = append(due, w)
			}
		}
		wire = keep
		for _, w := range due {
			switch w.f.Type {
			case FrameAck:
				s.OnAck(w.f.Cum)
			case FrameData:
				d, ack := r.OnData(w.f)
				for _, f := range d {
					got++
					if want := fmt.Sprintf("m%d", got); string(f.Payload) != want || f.Seq != uint64(got) || f.Tag != int32((got-1)%7) {
						t.Fatalf("delivery %d: %s, want payload %s", got, f.String(), want)
					}
				}
				push(*ack)
			}
		}
		if r.Delivered()%uint64(stableEvery) == 0 {
			s.Stable(r.Delivered())
		}
		if s.Unacked() < 0 || s.Acked() > r.Delivered() {
			t.Fatalf("unacked %d, acked %d > delivered %d", s.Unacked(), s.Acked(), r.Delivered())
		}
	}
	if !slices.IsSortedFunc(s.Log(), func(a, b Entry) int { return int(a.Seq - b.Seq) }) {
		t.Fatal("log out of order")
	}
}

func BenchmarkChannelCores(b *testing.B) {
	s := NewSender(0, 1, SenderConfig{})
	r := NewReceiver(0, 1, ReceiverConfig{})
	p := make([]byte, 64)
	now := time.Unix(0, 0)
	for b.Loop() {
		s.Send(now, 0, 0, p)
		for _, f := range s.Ready() {
			_, ack := r.OnData(f)
			s.Stable(ack.Cum)
		}
	}
}
