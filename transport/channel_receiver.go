package transport

import "fmt"

// ReceiverConfig configures a Receiver. Zero fields take their defaults.
type ReceiverConfig struct {
	// MaxBuffered bounds how far ahead of the next expected message a
	// frame may be and still be held for later delivery; frames further
	// ahead are dropped (the sender retransmits them). Default 4096.
	MaxBuffered int
}

func (c ReceiverConfig) withDefaults() ReceiverConfig {
	if c.MaxBuffered <= 0 {
		c.MaxBuffered = 4096
	}
	return c
}

// ReceiverState is what a checkpoint keeps of a Receiver. Frames held out
// of order are not part of it: their senders still log them.
type ReceiverState struct {
	Delivered uint64 // every Seq ≤ Delivered was delivered, in order
}

// Receiver is the receiving half of one channel src→dst: it delivers
// messages in order, exactly once, and acks cumulatively. Its acks also
// carry stability: how far a committed checkpoint of the receiver covers
// the channel (Commit), so that the sender may drop those messages from
// its log without a frame of its own. Like Sender it is a deterministic
// state machine and not safe for concurrent use.
type Receiver struct {
	src, dst  uint32
	cfg       ReceiverConfig
	delivered uint64
	stable    uint64           // ≤ delivered: covered by a committed checkpoint
	held      map[uint64]Frame // out of order, seq in delivered+2 .. delivered+MaxBuffered
	out       []Frame
	ack       Frame
}

// NewReceiver returns the Receiver of channel src→dst, expecting Seq 1.
func NewReceiver(src, dst uint32, cfg ReceiverConfig) *Receiver {
	return &Receiver{src: src, dst: dst, cfg: cfg.withDefaults(),
		ack: Frame{Type: FrameAck, Src: src, Dst: dst}}
}

// OnData takes one DATA frame of this channel. It returns the frames now
// deliverable, in order (this one and any held ones it unblocks), and the
// ack to send back: every DATA frame is answered, duplicates too, so a lost
// ack is repaired by the retransmission it causes. A frame of another
// channel is ignored (nil, nil). Both results are valid until the next call;
// a held frame keeps its Payload, so the caller must not reuse the buffer it
// decoded the frame from.
func (r *Receiver) OnData(f Frame) (deliver []Frame, ack *Frame) {
	if f.Type != FrameData || f.Src != r.src || f.Dst != r.dst || f.Seq == 0 {
		return nil, nil
	}
	r.out = r.out[:0]
	switch {
	case f.Seq <= r.delivered: // duplicate
	case f.Seq == r.delivered+1:
		r.out = append(r.out, f)
		r.delivered++
		for len(r.held) > 0 {
			g, ok := r.held[r.delivered+1]
			if !ok {
				break
			}
			delete(r.held, g.Seq)
			r.out = append(r.out, g)
			r.delivered++
		}
	case f.Seq-r.delivered <= uint64(r.cfg.MaxBuffered):
		if r.held == nil {
			r.held = make(map[uint64]Frame)
		}
		r.held[f.Seq] = f
	}
	return r.out, r.Ack()
}

// Ack returns the current cumulative ack, with the stability Commit
// recorded, valid until the next call. It claims nothing about the
// receiver's cuts (Cut 0): see AckIn.
func (r *Receiver) Ack() *Frame {
	r.ack.Cum, r.ack.Stable, r.ack.Cut = r.delivered, r.stable, 0
	return &r.ack
}

// AckIn is Ack from a receiving rank in epoch, whose cuts take every
// message delivered so far from now on: the ack tells the sender that
// its checkpoints of a later epoch need not log them (Sender.CutState).
// The caller must make sure of it: the rank's cut of epoch+1 must not
// have been taken before the last of them was delivered, and the rank's
// state must go on from here (not, say, from a state sent elsewhere
// earlier).
func (r *Receiver) AckIn(epoch uint64) *Frame {
	r.Ack()
	r.ack.Cut = epoch + 1
	return &r.ack
}

// Delivered returns the highest Seq delivered: all below it were too.
func (r *Receiver) Delivered() uint64 { return r.delivered }

// Commit records that a committed checkpoint of the receiver shows every
// Seq ≤ seq delivered: from now on its acks tell the sender so (ACK
// Stable). It never goes backwards, nor past what was delivered.
func (r *Receiver) Commit(seq uint64) {
	r.stable = max(r.stable, min(seq, r.delivered))
}

// Stable returns the stability the acks carry (Commit).
func (r *Receiver) Stable() uint64 { return r.stable }

// Held returns how many frames are waiting for an earlier one.
func (r *Receiver) Held() int { return len(r.held) }

// ResetTo rolls the receiver back (or forward) to having delivered every
// Seq ≤ seq and nothing else; held frames are dropped.
func (r *Receiver) ResetTo(seq uint64) {
	r.delivered = seq
	r.stable = min(r.stable, seq)
	clear(r.held)
}

// State returns what a checkpoint must keep.
func (r *Receiver) State() ReceiverState { return ReceiverState{Delivered: r.delivered} }

// Restore replaces the Receiver's state with st.
func (r *Receiver) Restore(st ReceiverState) error {
	if st.Delivered == ^uint64(0) {
		return fmt.Errorf("%w: receiver %d->%d: delivered %d", ErrBadState, r.src, r.dst, st.Delivered)
	}
	r.ResetTo(st.Delivered)
	return nil
}
