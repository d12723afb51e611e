package transport

import (
	"time"
)

// loopState is the part of an Endpoint only its loop goroutine touches.
type loopState struct {
	links   map[HostID]*peerLink
	tickers []*channel // channels with a local sender and a remote receiver
	dirty   []*channel // senders with Ready frames
	acks    []*channel // receivers owing an ACK
	msgs    []Message  // scratch
	nextID  uint64

	stableDue []*channel // receivers whose acks have stability to tell
	ticks     uint64
	arriving  int    // workers moved here by SetRoute, not yet restored
	logTold   uint64 // tick OnLogFull was last told at, while the logs are past the limit

	sends   []sendReq
	inbound []inBatch
	events  []func()
	after   []func()
}

type chanFlags struct{ ticking, dirty bool }

func (ls *loopState) init() { ls.links = map[HostID]*peerLink{} }

func (e *Endpoint) run() {
	defer e.wg.Done()
	t := time.NewTicker(e.cfg.TickEvery)
	defer t.Stop()
	for {
		select {
		case <-e.wake:
		case <-t.C:
			e.loop.tick(e, time.Now())
			e.loop.tickStable(e)
			e.loop.tickLog(e)
		case <-e.closing:
			e.loop.shutdown()
			return
		}
		e.loop.drain(e)
	}
}

// drain processes everything queued for the loop, then flushes links.
func (ls *loopState) drain(e *Endpoint) {
	for {
		e.qmu.Lock()
		ls.sends, e.sends = e.sends, ls.sends[:0]
		ls.inbound, e.inbound = e.inbound, ls.inbound[:0]
		ls.events, e.events = e.events, ls.events[:0]
		ls.after, e.afterq = e.afterq, ls.after[:0]
		e.qmu.Unlock()
		if len(ls.sends) == 0 && len(ls.inbound) == 0 && len(ls.events) == 0 && len(ls.after) == 0 {
			break
		}
		for i, f := range ls.events {
			f()
			ls.events[i] = nil
		}
		now := time.Now()
		for i := range ls.sends {
			ls.send(e, now, ls.sends[i])
			ls.sends[i] = sendReq{}
			if i%256 == 255 {
				ls.flushReady(e) // keeps Ready slices and batches small
			}
		}
		for i := range ls.inbound {
			ls.receive(e, ls.inbound[i])
			ls.inbound[i] = inBatch{}
		}
		ls.flushReady(e)
		ls.flushAcks(e)
		for i, f := range ls.after {
			f()
			ls.after[i] = nil
		}
	}
	for _, pl := range ls.links {
		pl.offer(e)
	}
}

func (ls *loopState) send(e *Endpoint, now time.Time, r sendReq) {
	ch := r.ch
	if len(ch.overflow) > 0 || !ch.sender.Send(now, r.tag, r.epoch, r.data) {
		ch.overflow = append(ch.overflow, r)
		return
	}
	ls.markDirty(ch)
}

func (ls *loopState) markDirty(ch *channel) {
	if !ch.flags.dirty {
		ch.flags.dirty = true
		ls.dirty = append(ls.dirty, ch)
	}
	if !ch.local && !ch.flags.ticking {
		ch.flags.ticking = true
		ls.tickers = append(ls.tickers, ch)
	}
}

// admitOverflow moves messages the Sender refused into it while it takes
// them.
func (ls *loopState) admitOverflow(e *Endpoint, ch *channel) {
	if len(ch.overflow) == 0 {
		return
	}
	now := time.Now()
	i := 0
	for ; i < len(ch.overflow); i++ {
		r := ch.overflow[i]
		if !ch.sender.Send(now, r.tag, r.epoch, r.data) {
			break
		}
		ls.markDirty(ch)
	}
	n := copy(ch.overflow, ch.overflow[i:])
	clear(ch.overflow[n:])
	ch.overflow = ch.overflow[:n]
}

// flushReady hands new DATA frames to local receivers or to links.
func (ls *loopState) flushReady(e *Endpoint) {
	// Delivering to a local receiver acks at once, which may admit
	// overflow and mark the channel dirty again: walk what is appended too.
	for i := 0; i < len(ls.dirty); i++ {
		ch := ls.dirty[i]
		ls.dirty[i] = nil
		ch.flags.dirty = false
		frames := ch.sender.Ready()
		if ch.local {
			for _, f := range frames {
				ls.deliver(e, ch, f)
			}
			ls.localAck(e, ch)
			continue
		}
		host := e.hostOf(ch.dst)
		e.ctr.sent.Add(uint64(len(frames)))
		for j := range frames {
			ls.emit(e, host, &frames[j])
		}
	}
	ls.dirty = ls.dirty[:0]
}

func (ls *loopState) flushAcks(e *Endpoint) {
	for i, ch := range ls.acks {
		ls.acks[i] = nil
		ch.ackDue = false
		ls.emitAck(e, ch)
	}
	ls.acks = ls.acks[:0]
}

// deliver passes one DATA frame to ch's receiver and the worker's inbox.
func (ls *loopState) deliver(e *Endpoint, ch *channel, f Frame) {
	if ls.arriving > 0 && e.worker(ch.dst).arriving {
		return // not restored yet: the sender's log keeps it
	}
	if e.cfg.HoldLaterEpochs && ls.hold(e, ch, f) {
		return
	}
	d, _ := ch.receiver.OnData(f)
	if len(d) == 0 {
		return
	}
	w := e.worker(ch.dst)
	if w.ended {
		e.ctr.discarded.Add(uint64(len(d)))
		return
	}
	ls.msgs = ls.msgs[:0]
	for _, g := range d {
		ls.msgs = append(ls.msgs, Message{Src: g.Src, Tag: g.Tag, Epoch: g.Epoch, Seq: g.Seq, Data: g.Payload})
	}
	w.in.push(ls.msgs)
	clear(ls.msgs)
}

// onAck takes an ack of ch: cum, stable from its receiver's committed
// checkpoint (0: none), and what it says of the receiver's cuts
// (Frame.Cut, 0: nothing). With StableOnAck an ack is stability too.
func (ls *loopState) onAck(e *Endpoint, ch *channel, cum, stable, cut uint64) {
	s := ch.sender
	before := s.Unacked()
	s.OnAck(cum)
	s.OnCut(cum, cut)
	if e.cfg.StableOnAck {
		stable = cum
	}
	if stable > 0 {
		ls.dropStable(e, ch, stable)
	}
	ch.release(before - s.Unacked())
	ls.admitOverflow(e, ch)
}

// localAck acks a channel whose receiver is here too, as its ACK frame
// would.
func (ls *loopState) localAck(e *Endpoint, ch *channel) {
	if e.worker(ch.dst).gone {
		return // see Leave
	}
	ls.onAck(e, ch, ch.receiver.Delivered(), 0, e.cutClaim(ch.dst))
}

// receive handles the frames of one buffer from a peer.
func (ls *loopState) receive(e *Endpoint, b inBatch) {
	var received, dups, acked uint64 // added to the counters once per batch
	defer func() {
		e.ctr.received.Add(received)
		e.ctr.duplicates.Add(dups)
		e.ctr.acked.Add(acked)
	}()
	for i := range b.frames {
		f := &b.frames[i]
		switch f.Type {
		case FrameData:
			if !e.isLocal(f.Dst) || e.isLocal(f.Src) || ls.arriving > 0 && e.worker(f.Dst).arriving {
				continue // misrouted, or for a rank not restored yet
			}
			ch := e.channel(f.Src, f.Dst)
			received++
			if f.Seq <= ch.receiver.Delivered() {
				dups++
			}
			ls.deliver(e, ch, *f)
			if !ch.ackDue {
				ch.ackDue = true
				ls.acks = append(ls.acks, ch)
			}
		case FrameAck:
			// Only the host the route names for the receiver acks: a
			// late ack from the host a rank left may cover messages its
			// new host never got.
			if !e.isLocal(f.Src) || e.isLocal(f.Dst) || e.hostOf(f.Dst) != b.pl.host {
				continue
			}
			ch := e.channel(f.Src, f.Dst)
			before := ch.sender.Acked()
			ls.onAck(e, ch, f.Cum, f.Stable, f.Cut)
			if after := ch.sender.Acked(); after > before {
				acked += after - before
			}
		case FrameControl:
			if e.cfg.OnControl != nil {
				e.cfg.OnControl(b.pl.host, f.Kind, f.Body)
			}
		}
	}
}

// tick retransmits what timed out. Channels whose link is still busy
// sending are skipped: their frames may not even have left, and resending
// into a congested link only lengthens the queue.
func (ls *loopState) tick(e *Endpoint, now time.Time) {
	for _, ch := range ls.tickers {
		host := e.hostOf(ch.dst)
		if pl := ls.links[host]; pl != nil && pl.congested(e) {
			continue
		}
		frames := ch.sender.Tick(now)
		if len(frames) == 0 {
			continue
		}
		e.ctr.resent.Add(uint64(len(frames)))
		for j := range frames {
			ls.emit(e, host, &frames[j])
		}
	}
}

// emit encodes f into the batch for host; without a link it is dropped
// (the sender log still has it).
func (ls *loopState) emit(e *Endpoint, host HostID, f *Frame) {
	pl := ls.links[host]
	if pl == nil {
		return
	}
	if len(pl.out) >= e.cfg.MaxBatch {
		pl.handoff(e)
	}
	pl.out = AppendFrame(pl.out, f)
}

func (ls *loopState) addLink(e *Endpoint, host HostID, l Link) {
	if old := ls.links[host]; old != nil {
		old.kill(nil)
	}
	ls.nextID++
	pl := newPeerLink(e, host, l, ls.nextID)
	ls.links[host] = pl
	now := time.Now()
	e.mu.RLock()
	var chans []*channel
	for _, ch := range e.chans {
		chans = append(chans, ch)
	}
	e.mu.RUnlock()
	for _, ch := range chans {
		if ch.sender != nil && !ch.local && e.hostOf(ch.dst) == host {
			frames := ch.sender.OnReconnect(now)
			e.ctr.resent.Add(uint64(len(frames)))
			for j := range frames {
				ls.emit(e, host, &frames[j])
			}
		}
		if ch.receiver != nil && !ch.local && e.hostOf(ch.src) == host && ch.receiver.Delivered() > 0 {
			ls.emitAck(e, ch)
		}
	}
	pl.start(e)
}

func (ls *loopState) linkDown(e *Endpoint, pl *peerLink, err error) {
	if ls.links[pl.host] != pl {
		return
	}
	delete(ls.links, pl.host)
	if e.cfg.OnLinkDown != nil {
		e.cfg.OnLinkDown(pl.host, err)
	}
}

func (ls *loopState) shutdown() {
	for _, pl := range ls.links {
		pl.kill(nil)
	}
}
