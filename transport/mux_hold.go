package transport

import (
	"maps"
	"slices"
)

// With HoldLaterEpochs, a rank takes its checkpoint of epoch e before it
// is given any message stamped with e or later (the sender had taken its
// own checkpoint of e when it sent it): otherwise the checkpoint of e of
// the receiver would hold a message that the sender's does not show as
// sent, an orphan. Such a frame is neither delivered nor acked; it waits
// in its channel until SetEpoch moves the rank to its epoch. The sender
// keeps it in its log meanwhile, and its retransmissions are dropped as
// duplicates of the held frame.

// hold keeps f if its epoch is later than its receiver's, and tells
// OnEpochAhead the first time an epoch is seen. It reports whether f was
// held.
func (ls *loopState) hold(e *Endpoint, ch *channel, f Frame) bool {
	w := e.worker(ch.dst)
	if f.Epoch <= w.epoch.Load() || f.Seq <= ch.receiver.Delivered() {
		return false
	}
	if ch.held == nil {
		ch.held = map[uint64]Frame{}
	}
	if len(ch.held) == 0 {
		w.held = append(w.held, ch)
	}
	ch.held[f.Seq] = f
	if f.Epoch > w.ahead {
		w.ahead = f.Epoch
		if e.cfg.OnEpochAhead != nil {
			e.cfg.OnEpochAhead(ch.dst, f.Epoch)
		}
	}
	return true
}

// releaseHeld delivers, in order, the frames held for rank that its epoch
// now covers, and acks them.
func (ls *loopState) releaseHeld(e *Endpoint, rank uint32) {
	w := e.worker(rank)
	epoch := w.epoch.Load()
	chans := w.held
	w.held = nil
	for _, ch := range chans {
		for _, seq := range slices.Sorted(maps.Keys(ch.held)) {
			f := ch.held[seq]
			if f.Epoch > epoch {
				break // later frames of a channel have later epochs
			}
			delete(ch.held, seq)
			ls.deliver(e, ch, f)
		}
		if len(ch.held) > 0 && !slices.Contains(w.held, ch) {
			w.held = append(w.held, ch)
		}
		if ch.local {
			ls.localAck(e, ch)
		} else if !ch.ackDue {
			ch.ackDue = true
			ls.acks = append(ls.acks, ch)
		}
	}
	ls.flushReady(e)
}

// dropHeld forgets the frames held for w (its rank is being restored:
// their senders send them again).
func (ls *loopState) dropHeld(w *worker) {
	for _, ch := range w.held {
		clear(ch.held)
	}
	w.held, w.ahead = nil, 0
}
