package transport

import (
	"fmt"
	"slices"
	"time"
)

// RankState is one local rank's share of an Endpoint's state at a
// consistent cut: the epoch stamped on its messages, the sending half of
// each channel from it, the receiving half of each channel to it, and the
// messages delivered to its inbox that its program has not taken yet.
// Together with the program's own state it lets the rank continue exactly:
// no message is lost or delivered twice.
type RankState struct {
	Rank  uint32
	Epoch uint64
	Sends []SendState
	Recvs []RecvState
	Inbox []Message // in arrival order
}

// SendState is the sending half of channel Rank→Dst.
type SendState struct {
	Dst uint32
	SenderState
	// Queued holds messages Send accepted that the Sender had no room
	// for yet (a full window); they have no sequence number (Seq 0).
	Queued []Entry
}

// RecvState is the receiving half of channel Src→Rank.
type RecvState struct {
	Src uint32
	ReceiverState
}

// Snapshot returns the state of the given local ranks, to go on from
// elsewhere (a migration's last state). The caller makes sure none of
// them sends or receives until it returns (they are paused). Everything
// they sent before is processed first, so a message between two of them
// is either in its receiver's inbox or taken by it; the log of a sender
// whose receiver is among ranks keeps only messages that receiver has not
// had, which on one host is none. Messages the ranks are given here after
// it may be missing from the state, so from then on their acks claim
// nothing of their cuts (Frame.Cut) until a Restore. Message payloads are
// shared with the Endpoint and must not be modified.
func (e *Endpoint) Snapshot(ranks []uint32) ([]RankState, error) {
	return e.snapshotAt(ranks, 0)
}

// Stayed says that the state of rank taken by Snapshot did not go on
// elsewhere (its migration was called off): the rank runs on here with
// everything it was given since, acks again (Leave), and its acks claim
// its cuts again.
func (e *Endpoint) Stayed(rank uint32) {
	e.do(func() {
		w := e.worker(rank)
		w.left, w.gone = false, false
	})
}

// Leave says that rank's state is about to be taken (Snapshot) to go on
// on another host: from now on it acks nothing, until a Restore or
// Stayed. What it is given here from then on may not be in that state,
// and an ack of it, reaching its sender late (once the rank is back on
// this host, where the sender's route check lets it through), would stop
// the retransmission of a message the state never had. It does not wait.
func (e *Endpoint) Leave(rank uint32) {
	e.after(func() { e.worker(rank).gone = true })
}

// SnapshotAt is Snapshot as the ranks' cut of epoch, later than the epoch
// each is in: they are moved to epoch at the same instant (SetEpoch), and
// each sender log leaves out what its receiver's acks said the
// receiver's own cut of epoch holds (Sender.CutState).
func (e *Endpoint) SnapshotAt(ranks []uint32, epoch uint64) ([]RankState, error) {
	if epoch == 0 {
		return nil, fmt.Errorf("%w: a cut of epoch 0", ErrBadState)
	}
	return e.snapshotAt(ranks, epoch)
}

func (e *Endpoint) snapshotAt(ranks []uint32, epoch uint64) ([]RankState, error) {
	res := make(chan []RankState, 1)
	if !e.after(func() { res <- e.loop.snapshot(e, ranks, epoch) }) {
		return nil, ErrClosed
	}
	select {
	case st := <-res:
		return st, nil
	case <-e.closing:
		return nil, ErrClosed
	}
}

// Restore gives a new Endpoint the state of some local ranks, as Snapshot
// returned it (in this process or another). Call it before any of those
// ranks sends or receives. Logged messages their receivers had not
// delivered are delivered (locally) or sent again (to other hosts).
func (e *Endpoint) Restore(states []RankState) error {
	for _, st := range states {
		if !e.isLocal(st.Rank) {
			return fmt.Errorf("%w: rank %d is not on host %s", ErrBadState, st.Rank, e.cfg.Host)
		}
	}
	res := make(chan error, 1)
	if !e.after(func() { res <- e.loop.restore(e, states) }) {
		return ErrClosed
	}
	select {
	case err := <-res:
		return err
	case <-e.closing:
		return ErrClosed
	}
}

// after queues f to run on the loop once everything queued before it
// has been processed and flushed. It reports false if e is closed.
func (e *Endpoint) after(f func()) bool {
	if e.closed.Load() {
		return false
	}
	e.qmu.Lock()
	e.afterq = append(e.afterq, f)
	e.qmu.Unlock()
	e.poke()
	return true
}

// snapshot takes the state of ranks: their cut of epoch, or with epoch 0
// a state to go on from elsewhere (Snapshot).
func (ls *loopState) snapshot(e *Endpoint, ranks []uint32, epoch uint64) []RankState {
	in := make(map[uint32]int, len(ranks))
	out := make([]RankState, len(ranks))
	for i, r := range ranks {
		in[r] = i
		w := e.worker(r)
		out[i] = RankState{Rank: r, Epoch: w.epoch.Load(), Inbox: w.in.snapshot()}
		if epoch == 0 {
			w.left = true
		} else {
			// On the loop, where deliveries and acks are: no ack claims
			// for this cut what it lacks (cutClaim).
			if w.epoch.Load() < epoch {
				w.epoch.Store(epoch)
			}
			out[i].Epoch = epoch
		}
	}
	chans := e.sortedChans(func(*channel) bool { return true })
	for _, ch := range chans {
		if i, ok := in[ch.src]; ok && ch.sender != nil {
			st := ch.sender.CutState(epoch)
			if _, both := in[ch.dst]; both && ch.receiver != nil {
				// The receiver's state is in the same cut: the log need
				// only hold what it has not delivered.
				st.Entries = entriesAfter(st.Entries, ch.receiver.Delivered())
			}
			ss := SendState{Dst: ch.dst, SenderState: st}
			for _, r := range ch.overflow {
				ss.Queued = append(ss.Queued, Entry{Epoch: r.epoch, Tag: r.tag, Payload: r.data})
			}
			out[i].Sends = append(out[i].Sends, ss)
		}
		if i, ok := in[ch.dst]; ok && ch.receiver != nil {
			out[i].Recvs = append(out[i].Recvs, RecvState{Src: ch.src, ReceiverState: ch.receiver.State()})
		}
	}
	return out
}

func (ls *loopState) restore(e *Endpoint, states []RankState) error {
	type sent struct {
		ch *channel
		st *SendState
	}
	var sends []sent
	var recvs []*channel
	restored := make(map[uint32]bool, len(states))
	for _, st := range states {
		restored[st.Rank] = true
	}
	for _, st := range states {
		w := e.worker(st.Rank)
		w.epoch.Store(st.Epoch)
		w.left, w.gone = false, false
		if w.arriving {
			w.arriving = false
			ls.arriving--
		}
		w.ended = false
		ls.dropHeld(w)
		for _, r := range st.Recvs {
			ch := e.channel(r.Src, st.Rank)
			if err := ch.receiver.Restore(r.ReceiverState); err != nil {
				return err
			}
			if ch.local && !restored[r.Src] {
				recvs = append(recvs, ch)
			}
		}
		for i := range st.Sends {
			sends = append(sends, sent{e.channel(st.Rank, st.Sends[i].Dst), &st.Sends[i]})
		}
		w.in.restore(st.Inbox, st.Recvs)
	}
	now := time.Now()
	for _, s := range sends {
		ch := s.ch
		before := ch.sender.Logged()
		for _, r := range ch.overflow {
			before += int64(len(r.data))
		}
		clear(ch.overflow)
		ch.overflow = ch.overflow[:0]
		if err := ch.sender.Restore(s.st.SenderState); err != nil {
			return err
		}
		e.addLogged(ch.sender.Logged() - before)
		if ch.local {
			// Deliver what the receiver had not had; the rest it had.
			d := ch.receiver.Delivered()
			for _, en := range s.st.Entries {
				if en.Seq > d {
					ls.deliver(e, ch, ch.sender.frame(&en))
				}
			}
			ch.sender.OnAck(ch.receiver.Delivered())
			if e.cfg.StableOnAck {
				ls.dropStable(e, ch, ch.receiver.Delivered())
			}
		} else if len(s.st.Entries) > 0 {
			ls.markDirty(ch) // the retransmit timer sends them again
		}
		ch.mu.Lock()
		ch.used = ch.sender.Unacked()
		ch.mu.Unlock()
		for _, q := range s.st.Queued {
			ch.mu.Lock()
			ch.used += int64(len(q.Payload))
			ch.mu.Unlock()
			e.addLogged(int64(len(q.Payload)))
			ls.send(e, now, sendReq{ch: ch, tag: q.Tag, epoch: q.Epoch, data: q.Payload})
		}
	}
	for _, ch := range recvs {
		if err := ls.redeliver(e, ch); err != nil {
			return err
		}
	}
	ls.flushReady(e)
	return nil
}

// redeliver gives a restored local receiver, whose sender here was not
// restored with it (its rank moved here), what the sender's log holds
// past the receiver's state.
func (ls *loopState) redeliver(e *Endpoint, ch *channel) error {
	d := ch.receiver.Delivered()
	log := ch.sender.Log()
	if first := ch.sender.Next() - uint64(len(log)); d+1 < first {
		return fmt.Errorf("%w: %d->%d restored at %d, log starts at %d", ErrLogTrimmed, ch.src, ch.dst, d, first)
	}
	for i := range log {
		if log[i].Seq > d {
			ls.deliver(e, ch, ch.sender.frame(&log[i]))
		}
	}
	ls.localAck(e, ch)
	return nil
}

// snapshot copies the messages waiting in the inbox.
func (in *inbox) snapshot() []Message {
	in.mu.Lock()
	defer in.mu.Unlock()
	return slices.Clone(in.q[in.head:])
}

// restore replaces the inbox's messages with ms, and how far the
// channels of recvs are delivered.
func (in *inbox) restore(ms []Message, recvs []RecvState) {
	in.mu.Lock()
	in.q, in.head = slices.Clone(ms), 0
	for _, r := range recvs {
		in.setGot(r.Src, r.Delivered)
	}
	in.mu.Unlock()
	if len(ms) > 0 {
		select {
		case in.notify <- struct{}{}:
		default:
		}
	}
}

// sortedChans returns the channels that keep reports, by source and then
// destination rank.
func (e *Endpoint) sortedChans(keep func(*channel) bool) []*channel {
	e.mu.RLock()
	var chans []*channel
	for _, ch := range e.chans {
		if keep(ch) {
			chans = append(chans, ch)
		}
	}
	e.mu.RUnlock()
	slices.SortFunc(chans, func(a, b *channel) int {
		if a.src != b.src {
			return int(a.src) - int(b.src)
		}
		return int(a.dst) - int(b.dst)
	})
	return chans
}
