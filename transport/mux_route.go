package transport

import (
	"fmt"
	"slices"
	"time"
)

// SetRoute moves ranks between hosts: route replaces Route for the job's
// ranks 0..ranks-1. Every host of the job calls it with the same route.
//
// A rank leaving this host must be stopped first and its state taken
// (Snapshot), to be restored on its new host; its channels' halves here
// are dropped. A rank arriving here receives nothing until Restore gives
// it its state (RankState{Rank: r} for one that starts afresh): frames for
// it are left to their senders' retransmissions meanwhile. A local sender
// whose receiver moved sends its whole log again to the new host, whose
// receiver drops what its state shows delivered; a local receiver whose
// sender moved acks to the sender's new host. What the old host acked but
// no committed checkpoint covers is still in the log, so nothing is lost,
// provided StableOnAck is false (with it, acks drop messages the moved
// rank's state may lack). SetRoute returns once the change is in effect.
func (e *Endpoint) SetRoute(ranks uint32, route func(rank uint32) HostID) error {
	if route == nil {
		return fmt.Errorf("transport: SetRoute needs a route")
	}
	done := make(chan struct{})
	if !e.after(func() { e.loop.reroute(e, ranks, route); close(done) }) {
		return ErrClosed
	}
	select {
	case <-done:
		return nil
	case <-e.closing:
		return ErrClosed
	}
}

func (ls *loopState) reroute(e *Endpoint, ranks uint32, route func(uint32) HostID) {
	old := *e.route.Load()
	here := func(r uint32) bool { return route(r) == e.cfg.Host }
	var resend, reack []*channel
	e.mu.Lock()
	e.route.Store(&route)
	for r, w := range e.workers {
		if !here(r) {
			ls.dropHeld(w)
			if w.arriving {
				ls.arriving--
			}
			delete(e.workers, r)
		}
	}
	for r := range ranks {
		if here(r) && old(r) != e.cfg.Host {
			w := e.workers[r]
			if w == nil {
				w = newWorker()
				e.workers[r] = w
			}
			ls.arrive(w)
		}
	}
	for k, ch := range e.chans {
		src, dst := here(ch.src), here(ch.dst)
		if ch.sender != nil && !src {
			ls.forgetSender(e, ch)
		}
		if ch.receiver != nil && !dst {
			ch.receiver = nil
			clear(ch.held)
		}
		if !src && !dst {
			delete(e.chans, k)
			continue
		}
		if ch.sender == nil && src {
			ch.sender = NewSender(ch.src, ch.dst, e.cfg.Sender)
		}
		if ch.receiver == nil && dst {
			ch.receiver = NewReceiver(ch.src, ch.dst, e.cfg.Receiver)
		}
		ch.local = src && dst
		if ch.sender != nil && !ch.local && old(ch.dst) != route(ch.dst) {
			resend = append(resend, ch)
		}
		if ch.receiver != nil && !ch.local && old(ch.src) != route(ch.src) && ch.receiver.Delivered() > 0 {
			reack = append(reack, ch)
		}
	}
	e.mu.Unlock()
	ls.tickers = slices.DeleteFunc(ls.tickers, func(ch *channel) bool {
		ch.flags.ticking = ch.sender != nil && !ch.local
		return !ch.flags.ticking
	})
	ls.acks = slices.DeleteFunc(ls.acks, func(ch *channel) bool {
		ch.ackDue = ch.ackDue && ch.receiver != nil
		return !ch.ackDue
	})
	now := time.Now()
	for _, ch := range resend {
		frames := ch.sender.Resend(now)
		e.ctr.resent.Add(uint64(len(frames)))
		host := e.hostOf(ch.dst)
		for j := range frames {
			ls.emit(e, host, &frames[j])
		}
		if !ch.flags.ticking {
			ch.flags.ticking = true
			ls.tickers = append(ls.tickers, ch)
		}
	}
	for _, ch := range reack {
		ls.emitAck(e, ch)
	}
}

// forgetSender drops the sending half of ch: its rank left with its state.
func (ls *loopState) forgetSender(e *Endpoint, ch *channel) {
	n := ch.sender.Logged()
	for _, r := range ch.overflow {
		n += int64(len(r.data))
	}
	e.addLogged(-n)
	if !e.cfg.StableOnAck {
		e.logFreed()
	}
	clear(ch.overflow)
	ch.overflow = ch.overflow[:0]
	ch.sender = nil
}

// arrive makes w a rank that receives nothing until Restore.
func (ls *loopState) arrive(w *worker) {
	if !w.arriving {
		w.arriving = true
		ls.arriving++
	}
}
