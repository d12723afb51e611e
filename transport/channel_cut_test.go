package transport

import (
	"slices"
	"testing"
	"time"
)

// seqs returns the sequence numbers of es.
func seqs(es []Entry) []uint64 {
	var out []uint64
	for _, e := range es {
		out = append(out, e.Seq)
	}
	return out
}

// A sender's checkpoint of an epoch leaves out what the receiver's acks
// said its own cut of that epoch holds; claims of later epochs, of no
// epoch, and those made before a restore, a rewind or a move of the
// receiver count for nothing.
func TestSenderCutState(t *testing.T) {
	now := time.Unix(0, 0)
	s := NewSender(0, 1, SenderConfig{})
	for i := range 7 {
		s.Send(now, 0, 4, []byte{byte(i)}) // seq 1..7
	}
	check := func(what string, epoch uint64, want []uint64, next uint64) {
		t.Helper()
		st := s.CutState(epoch)
		if !slices.Equal(seqs(st.Entries), want) || st.Next != next {
			t.Fatalf("%s: cut of %d keeps %v next %d, want %v next %d", what, epoch, seqs(st.Entries), st.Next, want, next)
		}
	}
	check("no claim", 5, []uint64{1, 2, 3, 4, 5, 6, 7}, 8)
	s.OnCut(6, 0)
	check("a claim of no epoch", 5, []uint64{1, 2, 3, 4, 5, 6, 7}, 8)
	s.OnCut(2, 5) // the receiver had 1..2 while in epoch 4
	s.OnCut(4, 6) // and 3..4 only once in epoch 5: not in its cut of 5
	check("claims of 5 and 6", 5, []uint64{3, 4, 5, 6, 7}, 8)
	check("claims of 5 and 6", 6, []uint64{5, 6, 7}, 8)
	check("epoch 0, which no ack claims", 0, []uint64{1, 2, 3, 4, 5, 6, 7}, 8)
	s.OnCut(3, 5) // a late ack of epoch 4
	check("an overtaken claim", 5, []uint64{4, 5, 6, 7}, 8)
	s.OnCut(99, 5) // past what was sent: counts up to seq 7
	check("a claim past the end", 6, nil, 8)

	for i := range cutMarks + 1 {
		s.OnCut(1, uint64(10+i)) // more epochs than kept: the oldest goes
	}
	if s.cuts[0].from != 11 || s.cuts[cutMarks-1].from != 10+cutMarks {
		t.Fatalf("claims kept: %+v", s.cuts)
	}
	check("claims carried over", 11, nil, 8)

	s.OnAck(7)
	if err := s.Rewind(3); err != nil {
		t.Fatal(err)
	}
	check("after a rewind", 6, []uint64{1, 2, 3, 4, 5, 6, 7}, 8)
	s.OnCut(7, 6)
	s.Resend(now)
	check("after a move", 6, []uint64{1, 2, 3, 4, 5, 6, 7}, 8)
	s.OnCut(7, 6)
	if err := s.Restore(SenderState{Next: 8, Entries: s.Log()}); err != nil {
		t.Fatal(err)
	}
	check("after a restore", 6, []uint64{1, 2, 3, 4, 5, 6, 7}, 8)
}

// A receiver's acks claim its cuts only when asked (AckIn), and a version 3
// frame carries the claim.
func TestReceiverAckIn(t *testing.T) {
	r := NewReceiver(0, 1, ReceiverConfig{})
	_, ack := r.OnData(Frame{Type: FrameData, Src: 0, Dst: 1, Seq: 1})
	if ack.Cut != 0 {
		t.Fatalf("OnData's ack claims %d", ack.Cut)
	}
	if a := r.AckIn(4); a.Cut != 5 || a.Cum != 1 {
		t.Fatalf("AckIn(4): %+v, want cum 1 cut 5", a)
	}
	if a := r.Ack(); a.Cut != 0 {
		t.Fatalf("Ack after AckIn claims %d", a.Cut)
	}
	b := AppendFrame(nil, r.AckIn(4))
	f, _, err := DecodeFrame(b)
	if err != nil || f.Cut != 5 || f.Cum != 1 {
		t.Fatalf("decoded %+v, %v", f, err)
	}
}
