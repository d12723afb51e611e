package transport

// Stability. A message leaves its sender's log only once it is stable:
// delivered, and covered by a committed checkpoint of its receiver. With
// StableOnAck (runs without checkpoints) every ack makes it so. Otherwise
// the host calls StableCut with its local ranks' states of each committed
// epoch. A channel whose sender is local drops them at once; one whose
// sender is on another host records them in its Receiver (Commit), and
// its ACK frames carry them (Stable) from then on. Receivers ack every
// DATA frame, so on a channel in use the sender learns it with the next
// ack, without a frame of its own. A channel that stays quiet after a
// commit sends its ack once on its own after stableIdleTicks ticks, so that
// its sender's log does not keep what is stable for ever (counted in
// Counters.StableAcks). Links lose nothing but when they fail, and a new
// link starts with every receiver's ack, so once is enough; over a lossy
// test link (WithFaults) a lost one waits for the channel's next ack.

// stableIdleTicks is how many ticks a commit's stability waits for an ack
// to ride on before it is sent on its own.
const stableIdleTicks = 2

// StableCut tells the Endpoint that states, the states of some local ranks
// (as Snapshot returned them, or as restored) in an epoch that is now
// committed, are durable: every message they show delivered is stable.
// Sender logs on this host drop those messages now; senders on other hosts
// learn it from the next ACK of their channel. Call it for each committed
// epoch, and after restoring ranks from a committed epoch. Calls with an
// older cut change nothing.
func (e *Endpoint) StableCut(states []RankState) {
	type mark struct {
		ch  *channel
		seq uint64
	}
	var marks []mark
	for _, st := range states {
		for _, r := range st.Recvs {
			if ch := e.channel(r.Src, st.Rank); ch != nil {
				marks = append(marks, mark{ch, r.Delivered})
			}
		}
	}
	if len(marks) == 0 {
		return
	}
	e.do(func() {
		for _, m := range marks {
			e.loop.commit(e, m.ch, m.seq)
		}
	})
}

// LogBytes returns the payload bytes held in this host's sender logs for
// messages not yet stable (and messages Send accepted that wait for room
// in a window). It is 0 with StableOnAck: the windows bound the logs then,
// and the count is not kept.
func (e *Endpoint) LogBytes() int64 { return e.logged.Load() }

// addLogged counts n more bytes in the sender logs (fewer if negative).
func (e *Endpoint) addLogged(n int64) {
	if !e.cfg.StableOnAck {
		e.logged.Add(n)
	}
}

// commit applies one channel's share of a committed cut.
func (ls *loopState) commit(e *Endpoint, ch *channel, seq uint64) {
	switch {
	case ch.sender != nil:
		ls.stable(e, ch, seq)
	case ch.receiver != nil:
		ch.receiver.Commit(seq)
		if ch.receiver.Stable() > ch.told {
			if ch.dueAt == 0 {
				ls.stableDue = append(ls.stableDue, ch)
			}
			ch.dueAt = ls.ticks + stableIdleTicks
		}
	}
}

// stable drops messages with Seq ≤ seq from ch's sender log and gives the
// window and the log limit what they held.
func (ls *loopState) stable(e *Endpoint, ch *channel, seq uint64) {
	if ch.sender == nil {
		return // its rank moved to another host (SetRoute)
	}
	before := ch.sender.Unacked()
	ls.dropStable(e, ch, seq)
	ch.release(before - ch.sender.Unacked())
	ls.admitOverflow(e, ch)
}

// dropStable is Sender.Stable with the Endpoint's count of logged bytes.
func (ls *loopState) dropStable(e *Endpoint, ch *channel, seq uint64) {
	if e.cfg.StableOnAck {
		ch.sender.Stable(seq)
		return
	}
	before := ch.sender.Logged()
	ch.sender.Stable(seq)
	if d := before - ch.sender.Logged(); d > 0 {
		e.logged.Add(-d)
		e.logFreed()
	}
}

// emitAck sends ch's receiver's ack to its sender's host; none for a rank
// that is leaving (Leave).
func (ls *loopState) emitAck(e *Endpoint, ch *channel) {
	if e.worker(ch.dst).gone {
		return
	}
	ack := ch.receiver.Ack()
	if c := e.cutClaim(ch.dst); c > 0 {
		ack = ch.receiver.AckIn(c - 1)
	}
	ch.told = ack.Stable
	ls.emit(e, e.hostOf(ch.src), ack)
}

// tickStable sends the acks of channels whose stability found no ack to
// ride on for stableIdleTicks ticks.
func (ls *loopState) tickStable(e *Endpoint) {
	ls.ticks++
	k := 0
	for _, ch := range ls.stableDue {
		switch {
		case ch.receiver == nil || ch.receiver.Stable() <= ch.told:
			ch.dueAt = 0 // an ack carried it
		case ls.ticks >= ch.dueAt:
			ch.dueAt = 0
			if ls.links[e.hostOf(ch.src)] != nil {
				e.ctr.stableAcks.Add(1)
				ls.emitAck(e, ch)
			}
		default:
			ls.stableDue[k] = ch
			k++
		}
	}
	clear(ls.stableDue[k:])
	ls.stableDue = ls.stableDue[:k]
}
