package transport

import (
	"fmt"
	"time"
)

// SenderConfig configures a Sender. Zero fields take their defaults.
type SenderConfig struct {
	// Window bounds the payload bytes sent and not yet acked: Send refuses
	// a message that would exceed it, unless nothing is unacked (so one
	// message larger than the window still goes). Default 64 MiB.
	Window int64
	// RetransmitAfter is how long an unacked message waits before it is
	// sent again. Each further retransmission of it waits twice as long,
	// up to MaxRetransmitAfter. Default 200 ms.
	RetransmitAfter time.Duration
	// MaxRetransmitAfter caps the backoff. Default 8 × RetransmitAfter.
	MaxRetransmitAfter time.Duration
}

// Defaults of SenderConfig.
const (
	DefaultWindow          = 64 << 20
	DefaultRetransmitAfter = 200 * time.Millisecond
)

func (c SenderConfig) withDefaults() SenderConfig {
	if c.Window <= 0 {
		c.Window = DefaultWindow
	}
	if c.RetransmitAfter <= 0 {
		c.RetransmitAfter = DefaultRetransmitAfter
	}
	if c.MaxRetransmitAfter < c.RetransmitAfter {
		c.MaxRetransmitAfter = 8 * c.RetransmitAfter
	}
	return c
}

// Entry is one message in a sender log.
type Entry struct {
	Seq     uint64
	Epoch   uint64
	Tag     int32
	Payload []byte
}

// SenderState is what a checkpoint keeps of a Sender: the next sequence
// number and the log. Whether entries were acked is deliberately not part
// of it: the receiver's checkpoint may predate the ack, so after a restore
// every logged message counts as unacked and is sent again (the receiver
// drops the duplicates).
type SenderState struct {
	Next    uint64  // sequence number of the next message; the first is 1
	Entries []Entry // Seq contiguous, ending at Next-1
}

// Sender is the sending half of one channel src→dst. It is a deterministic
// state machine: it never blocks, keeps no clock and does no I/O. The
// caller passes the time in, transmits the frames it returns and feeds it
// the peer's acks. It is not safe for concurrent use.
//
// Messages are numbered from 1. A message stays in the log until Stable
// says the receiver's checkpoint covers it; once acked it is no longer
// retransmitted (unless Rewind says the receiver lost it again).
type Sender struct {
	src, dst uint32
	cfg      SenderConfig

	next    uint64 // next sequence number
	acked   uint64 // every seq ≤ acked was acked; stable ≤ acked < next
	stable  uint64 // log holds stable+1 .. next-1
	log     []sentEntry
	head    int   // log[head] has seq stable+1
	unacked int64 // payload bytes of seq in acked+1 .. next-1
	logged  int64 // payload bytes of the log

	ready, spare []Frame
	deadline     time.Time // earliest retransmit due; valid if timed
	timed        bool

	// cuts is what the receiver's acks said its cuts hold (OnCut): each
	// Seq ≤ cum is in its cut of every epoch ≥ from. Oldest first, by
	// from; an unused slot has from 0.
	cuts [cutMarks]cutMark
}

// cutMark is one claim of the receiver's acks: Seq ≤ cum is in its cut
// of every epoch ≥ from.
type cutMark struct{ from, cum uint64 }

// cutMarks is how many claims a Sender keeps, one per epoch the receiver
// acked in: a cut asks for the newest epoch or the one before.
const cutMarks = 4

type sentEntry struct {
	Entry
	sentAt  time.Time
	retries uint32
}

// NewSender returns the Sender of channel src→dst with an empty log.
func NewSender(src, dst uint32, cfg SenderConfig) *Sender {
	return &Sender{src: src, dst: dst, cfg: cfg.withDefaults(), next: 1}
}

// Send logs a message and queues it for Ready. It returns false, and
// changes nothing, when the message does not fit in the window: the caller
// blocks the guest until an ack frees room. The Sender keeps payload (it is
// the log): the caller must not modify it afterwards.
func (s *Sender) Send(now time.Time, tag int32, epoch uint64, payload []byte) bool {
	n := int64(len(payload))
	if s.unacked > 0 && s.unacked+n > s.cfg.Window {
		return false
	}
	e := sentEntry{Entry: Entry{Seq: s.next, Epoch: epoch, Tag: tag, Payload: payload}, sentAt: now}
	s.next++
	s.log = append(s.log, e)
	s.unacked += n
	s.logged += n
	s.ready = append(s.ready, s.frame(&e.Entry))
	s.arm(now.Add(s.cfg.RetransmitAfter))
	return true
}

// Ready returns the frames of messages sent since the last call. The slice
// is valid until the next call to Ready.
func (s *Sender) Ready() []Frame {
	r := s.ready
	s.ready, s.spare = s.spare[:0], r
	return r
}

// HasReady reports whether Ready would return frames.
func (s *Sender) HasReady() bool { return len(s.ready) > 0 }

// OnAck records the peer's cumulative ack: every message with Seq ≤ cum
// was received. Acks that go backwards are ignored; an ack past the last
// message sent counts up to that message only.
func (s *Sender) OnAck(cum uint64) {
	if cum >= s.next {
		cum = s.next - 1
	}
	if cum <= s.acked {
		return
	}
	for seq := s.acked + 1; seq <= cum; seq++ {
		s.unacked -= int64(len(s.entry(seq).Payload))
	}
	s.acked = cum
	if s.acked == s.next-1 {
		s.timed = false
	}
}

// OnCut records an ack's claim about the receiver's cuts (Frame.Cut):
// every message with Seq ≤ cum is in its cut of every epoch ≥ from. A
// claim with from 0 says nothing.
func (s *Sender) OnCut(cum, from uint64) {
	if from == 0 {
		return
	}
	cum = min(cum, s.next-1)
	last := &s.cuts[cutMarks-1]
	switch {
	case from == last.from:
		last.cum = max(last.cum, cum)
	case from > last.from:
		copy(s.cuts[:], s.cuts[1:])
		*last = cutMark{from, max(cum, last.cum)}
	default:
		// An older epoch's ack, overtaken: it adds to the claims of its
		// epoch and of every later one.
		for i := range s.cuts {
			if c := &s.cuts[i]; c.from >= from {
				c.cum = max(c.cum, cum)
			}
		}
	}
}

// covered returns the highest Seq the receiver's cut of epoch is known to
// hold (OnCut): 0 if none.
func (s *Sender) covered(epoch uint64) uint64 {
	var cum uint64
	for _, c := range s.cuts {
		if c.from != 0 && c.from <= epoch {
			cum = max(cum, c.cum)
		}
	}
	return cum
}

// Tick retransmits every unacked message whose timer ran out at now, and
// doubles its next timeout (up to MaxRetransmitAfter).
func (s *Sender) Tick(now time.Time) []Frame {
	if !s.timed || now.Before(s.deadline) {
		return nil
	}
	var out []Frame
	s.timed = false
	for seq := s.acked + 1; seq < s.next; seq++ {
		e := s.entry(seq)
		due := e.sentAt.Add(s.rto(e.retries))
		if !now.Before(due) {
			out = append(out, s.frame(&e.Entry))
			e.sentAt = now
			e.retries++
			due = now.Add(s.rto(e.retries))
		}
		s.arm(due)
	}
	return out
}

// OnReconnect returns every unacked message, to be sent on a new link: the
// old one may have lost anything in flight. Their timers restart at now
// without backoff.
func (s *Sender) OnReconnect(now time.Time) []Frame {
	var out []Frame
	s.timed = false
	for seq := s.acked + 1; seq < s.next; seq++ {
		e := s.entry(seq)
		out = append(out, s.frame(&e.Entry))
		e.sentAt, e.retries = now, 0
		s.arm(now.Add(s.cfg.RetransmitAfter))
	}
	return out
}

// Stable drops every message with Seq ≤ seq from the log: the receiver's
// committed checkpoint covers them (an ACK's Stable, or StableCut on one
// host). It is the only way messages leave the log. Stable implies acked.
func (s *Sender) Stable(seq uint64) {
	if seq >= s.next {
		seq = s.next - 1
	}
	if seq <= s.stable {
		return
	}
	s.OnAck(seq)
	k := int(seq - s.stable)
	for i := s.head; i < s.head+k; i++ {
		s.logged -= int64(len(s.log[i].Payload))
	}
	clear(s.log[s.head : s.head+k])
	s.head += k
	s.stable = seq
	if s.head == len(s.log) {
		s.log, s.head = s.log[:0], 0
	} else if s.head > 1024 && s.head > len(s.log)/2 {
		n := copy(s.log, s.log[s.head:])
		clear(s.log[n:])
		s.log, s.head = s.log[:n], 0
	}
}

// Rewind marks every message with Seq ≥ fromSeq unacked again, after the
// receiver rolled back to having delivered fromSeq-1. The next Tick
// retransmits them. It fails with ErrLogTrimmed if some of them are no
// longer in the log.
func (s *Sender) Rewind(fromSeq uint64) error {
	if fromSeq == 0 || fromSeq > s.next {
		return fmt.Errorf("%w: rewind %d->%d to %d, next is %d", ErrBadState, s.src, s.dst, fromSeq, s.next)
	}
	if fromSeq-1 < s.stable {
		return fmt.Errorf("%w: rewind %d->%d to %d, log starts at %d", ErrLogTrimmed, s.src, s.dst, fromSeq, s.stable+1)
	}
	for seq := fromSeq; seq <= s.acked; seq++ {
		s.unacked += int64(len(s.entry(seq).Payload))
	}
	s.cuts = [cutMarks]cutMark{} // the receiver's cuts are not what they said
	if fromSeq-1 < s.acked {
		s.acked = fromSeq - 1
	}
	for seq := s.acked + 1; seq < s.next; seq++ {
		e := s.entry(seq)
		e.sentAt, e.retries = time.Time{}, 0
	}
	if s.acked+1 < s.next {
		s.deadline, s.timed = time.Time{}, true
	}
	return nil
}

// Resend marks every message in the log unacked and returns them all, to
// be sent to the receiver's new host: its state there may predate any ack
// the old host gave (it drops what it had), and what those acks said of
// its cuts is forgotten. Their timers restart at now.
func (s *Sender) Resend(now time.Time) []Frame {
	s.cuts = [cutMarks]cutMark{}
	if s.stable+1 < s.next {
		if err := s.Rewind(s.stable + 1); err != nil {
			panic(err) // cannot happen: stable+1 is the log's first message
		}
	}
	return s.OnReconnect(now)
}

// Log returns the messages in the log, oldest first, sharing payloads.
func (s *Sender) Log() []Entry {
	out := make([]Entry, 0, len(s.log)-s.head)
	for i := s.head; i < len(s.log); i++ {
		out = append(out, s.log[i].Entry)
	}
	return out
}

// Unacked returns the payload bytes sent and not yet acked.
func (s *Sender) Unacked() int64 { return s.unacked }

// Logged returns the payload bytes in the log: sent and not yet stable.
func (s *Sender) Logged() int64 { return s.logged }

// Acked returns the cumulative ack: every Seq ≤ Acked was received.
func (s *Sender) Acked() uint64 { return s.acked }

// Next returns the sequence number the next message will get.
func (s *Sender) Next() uint64 { return s.next }

// State returns what a checkpoint must keep; entries share payloads.
func (s *Sender) State() SenderState {
	return SenderState{Next: s.next, Entries: s.Log()}
}

// CutState returns what the sender's checkpoint of epoch must keep: State
// without the messages the receiver's acks said its own cut of epoch
// holds (OnCut); with epoch 0, which no ack claims, State. After a
// restore from both cuts, the receiver has delivered those and the rest
// come again from this log. Entries share payloads.
func (s *Sender) CutState(epoch uint64) SenderState {
	st := s.State()
	st.Entries = entriesAfter(st.Entries, s.covered(epoch))
	return st
}

// entriesAfter returns the entries of es, a log in Seq order, past seq.
func entriesAfter(es []Entry, seq uint64) []Entry {
	k := 0
	for k < len(es) && es[k].Seq <= seq {
		k++
	}
	return es[k:]
}

// Restore replaces the Sender's state with st. Every logged message counts
// as unacked and the next Tick (or OnReconnect) sends it again. Ready
// frames not yet taken are discarded.
func (s *Sender) Restore(st SenderState) error {
	if st.Next == 0 || uint64(len(st.Entries)) > st.Next-1 {
		return fmt.Errorf("%w: sender %d->%d: next %d with %d entries", ErrBadState, s.src, s.dst, st.Next, len(st.Entries))
	}
	first := st.Next - uint64(len(st.Entries))
	log := make([]sentEntry, len(st.Entries))
	var bytes int64
	for i, e := range st.Entries {
		if e.Seq != first+uint64(i) {
			return fmt.Errorf("%w: sender %d->%d: entry %d has seq %d, want %d", ErrBadState, s.src, s.dst, i, e.Seq, first+uint64(i))
		}
		log[i] = sentEntry{Entry: e}
		bytes += int64(len(e.Payload))
	}
	s.next, s.stable, s.acked = st.Next, first-1, first-1
	s.cuts = [cutMarks]cutMark{}
	s.log, s.head, s.unacked, s.logged = log, 0, bytes, bytes
	s.ready = s.ready[:0]
	s.timed = len(log) > 0
	s.deadline = time.Time{}
	return nil
}

func (s *Sender) entry(seq uint64) *sentEntry {
	return &s.log[s.head+int(seq-s.stable-1)]
}

func (s *Sender) frame(e *Entry) Frame {
	return Frame{Type: FrameData, Src: s.src, Dst: s.dst, Seq: e.Seq, Epoch: e.Epoch, Tag: e.Tag, Payload: e.Payload}
}

func (s *Sender) rto(retries uint32) time.Duration {
	d := s.cfg.RetransmitAfter
	for range retries {
		if d >= s.cfg.MaxRetransmitAfter {
			break
		}
		d *= 2
	}
	return min(d, s.cfg.MaxRetransmitAfter)
}

// arm makes the retransmit deadline at most t.
func (s *Sender) arm(t time.Time) {
	if !s.timed || t.Before(s.deadline) {
		s.deadline, s.timed = t, true
	}
}
