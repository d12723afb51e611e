package transport

import (
	"fmt"
	"slices"
)

// A rank's cut without waiting for the Endpoint's loop. Snapshot hands
// its work to the loop and waits: a paused rank then stands still until
// the loop gets a core, which on a busy host is behind every rank that
// computes. CutRank takes at once, under the rank's inbox lock, what only
// the paused rank's own instant can tell — the messages in its inbox and
// how far each channel to it is delivered — and moves the rank to the new
// epoch; the rank may go on. The loop fills in the sending halves later,
// after everything the rank sent before (queued ahead of it), leaving out
// what it sent since: those messages carry the new epoch, the earlier
// ones an older one, and a channel's epochs never go down.

// Cut is one local rank's share of the channel state at a capture point,
// begun by CutRank; State completes it.
type Cut struct {
	e     *Endpoint
	rank  uint32
	epoch uint64
	inbox []Message
	got   []uint64 // by source: how far its channel was delivered
	done  chan struct{}
	st    RankState
}

// CutRank takes local rank's cut of epoch, as Snapshot would while the
// rank is paused at a capture point, without waiting for the Endpoint's
// loop, and sets the epoch stamped on its messages from now on to epoch
// (SetEpoch). The rank may send and receive again as soon as CutRank
// returns. epoch must be later than the rank's epoch: that is how the
// messages it sends afterwards are told from the cut's. Its program must
// not have ended (Ended): use Snapshot then.
func (e *Endpoint) CutRank(rank uint32, epoch uint64) (*Cut, error) {
	if e.closed.Load() {
		return nil, ErrClosed
	}
	if !e.isLocal(rank) {
		return nil, fmt.Errorf("transport: cut of rank %d, which is not on host %s", rank, e.cfg.Host)
	}
	w := e.worker(rank)
	if cur := w.epoch.Load(); epoch <= cur {
		return nil, fmt.Errorf("%w: cut of rank %d at epoch %d, but it is in epoch %d already", ErrBadState, rank, epoch, cur)
	}
	c := &Cut{e: e, rank: rank, epoch: epoch, done: make(chan struct{})}
	// The inbox first: messages held for the new epoch are delivered
	// once SetEpoch releases them, after the cut.
	c.inbox, c.got = w.in.mark(&w.epoch, epoch)
	e.SetEpoch(rank, epoch)
	if !e.after(func() {
		c.st = e.loop.cutState(e, c)
		close(c.done)
	}) {
		return nil, ErrClosed
	}
	return c, nil
}

// State waits for the loop to complete the cut and returns it. Message
// payloads are shared with the Endpoint and must not be modified.
func (c *Cut) State() (RankState, error) {
	select {
	case <-c.done:
		return c.st, nil
	case <-c.e.closing:
		select {
		case <-c.done:
			return c.st, nil
		default:
			return RankState{}, ErrClosed
		}
	}
}

// cutClaim is what an ack of a channel to local rank may claim of its
// cuts (Frame.Cut): every message delivered to it so far is in its cut
// of each epoch after the one it is in. A rank's epoch moves on at its
// cut, at the same instant as the cut reads its inbox (inbox.mark) or on
// the loop (snapshot), and the loop reads the claim after it delivered,
// so the claim is never too early. 0 for a rank whose state was taken
// to go on elsewhere (worker.left).
func (e *Endpoint) cutClaim(rank uint32) uint64 {
	w := e.worker(rank)
	if w.left {
		return 0
	}
	return w.epoch.Load() + 1
}

// cutState completes c on the loop.
func (ls *loopState) cutState(e *Endpoint, c *Cut) RankState {
	out := RankState{Rank: c.rank, Epoch: c.epoch, Inbox: c.inbox}
	got := func(src uint32) uint64 {
		if int(src) < len(c.got) {
			return c.got[src]
		}
		return 0
	}
	chans := e.sortedChans(func(ch *channel) bool { return ch.src == c.rank || ch.dst == c.rank })
	for _, ch := range chans {
		if ch.src == c.rank && ch.sender != nil {
			// What the receiver's acks said its own cut holds is left
			// out; what the rank sent after the cut carries its epoch.
			st := ch.sender.CutState(c.epoch)
			if k := slices.IndexFunc(st.Entries, func(en Entry) bool { return en.Epoch >= c.epoch }); k >= 0 {
				st.Next, st.Entries = st.Entries[k].Seq, st.Entries[:k]
			}
			if ch.dst == c.rank {
				// Its own receiving half is in the cut: the log need
				// only hold what it had not delivered.
				st.Entries = entriesAfter(st.Entries, got(c.rank))
			}
			ss := SendState{Dst: ch.dst, SenderState: st}
			for _, r := range ch.overflow {
				if r.epoch < c.epoch {
					ss.Queued = append(ss.Queued, Entry{Epoch: r.epoch, Tag: r.tag, Payload: r.data})
				}
			}
			out.Sends = append(out.Sends, ss)
		}
		if ch.dst == c.rank && ch.receiver != nil {
			out.Recvs = append(out.Recvs, RecvState{Src: ch.src, ReceiverState: ReceiverState{Delivered: got(ch.src)}})
		}
	}
	return out
}
