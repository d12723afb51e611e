package transport

import (
	"context"
	"fmt"
	"log"
	"sync"
	"sync/atomic"
	"time"
)

// Any matches every source, or every tag ≥ 0, in Recv and TryRecv. Tags
// below Any are reserved for the guest SDK's collectives: only a Recv
// naming them exactly receives them.
const Any = -1

// EndpointConfig configures an Endpoint. Zero fields take their defaults,
// except Host and Route, which are required.
type EndpointConfig struct {
	// Host is this host's ID; ranks whose Route is Host are local.
	Host HostID
	// Route says on which host a rank runs; SetRoute changes it.
	Route func(rank uint32) HostID
	// ClusterID and Job go into the HELLO each link starts with; a peer
	// whose HELLO names another cluster or job (when both are set) is
	// disconnected.
	ClusterID, Job string
	// Incarnation is the job's incarnation this Endpoint belongs to; it
	// goes into the HELLO too. Each recovery of a job starts a new one,
	// with a new Endpoint restored from the committed cut (Restore, then
	// StableCut). A link whose peer names an older incarnation is refused
	// (ErrStale, counted in Counters.StaleLinks): a host declared dead
	// that comes back cannot inject its stale messages. A peer of a newer
	// one is refused too (ErrHandshake), until this host moves to it.
	Incarnation uint64
	// Restoring lists local ranks that receive nothing until Restore
	// gives them their state (RankState{Rank: r} for one that starts
	// afresh): a recovery's Endpoint, whose peers' ranks may run and send
	// while this host still reads its ranks' checkpoints. Frames for them
	// are left to their senders' retransmissions meanwhile, unacked: a
	// message delivered and acked before the restore would be dropped by
	// it (the inbox restored) and never sent again.
	Restoring []uint32

	Sender   SenderConfig
	Receiver ReceiverConfig
	// TickEvery is how often retransmit timers are checked. Default a
	// quarter of Sender.RetransmitAfter.
	TickEvery time.Duration
	// MaxBatch is the largest buffer of coalesced frames handed to a link,
	// unless one frame is larger. Default 64 KiB.
	MaxBatch int
	// MaxQueued bounds the bytes waiting for one link's Send; frames past
	// it are dropped, as a congested network would, and retransmitted
	// later. Drops cost a retransmit timeout, so keep it above the data
	// the windows let through. Default 2 × Sender.Window + 16 MiB.
	MaxQueued int
	// StableOnAck drops messages from the sender logs as soon as they are
	// acked: for runs that take no checkpoints. Otherwise only Stable does.
	StableOnAck bool
	// MaxLogBytes bounds the payload bytes the sender logs of this host
	// hold (LogBytes) when StableOnAck is false. A send that takes them
	// past it tells OnLogFull (once until a commit shortens them, and
	// again every 20 ticks while they stay past it), so that the host
	// forces a checkpoint; sends go on up to twice
	// the limit, then Send waits (TrySend returns false) until a commit
	// makes room. Without OnLogFull such a send fails with ErrLogFull.
	// Default 512 MiB.
	MaxLogBytes int64
	// OnLogFull is told the bytes in the sender logs when they pass
	// MaxLogBytes. A host that is checkpointing already may ignore it. It
	// runs on the Endpoint's goroutine and must not block.
	OnLogFull func(bytes int64)
	// HoldLaterEpochs keeps a message stamped with an epoch later than its
	// receiving rank's (SetEpoch) from being delivered until the rank's
	// epoch reaches it, so that no checkpoint holds a message sent after
	// its sender's checkpoint of the same epoch (mux_hold.go).
	HoldLaterEpochs bool
	// OnEpochAhead is told, once per epoch, that a message stamped with
	// epoch waits for local rank to take its checkpoint of that epoch. It
	// runs on the Endpoint's goroutine and must not block.
	OnEpochAhead func(rank uint32, epoch uint64)
	// OnControl receives CONTROL frames. It runs on the Endpoint's
	// goroutine and must not block.
	OnControl func(from HostID, kind uint8, body []byte)
	// OnLinkDown is told when a link fails or a peer is refused; the
	// driver may reconnect and call AddLink again. It must not block.
	OnLinkDown func(host HostID, err error)
	// Logf logs one line per event worth a human's attention (a refused
	// peer, garbage on a link). Default log.Printf.
	Logf func(format string, args ...any)
}

func (c EndpointConfig) withDefaults() EndpointConfig {
	c.Sender = c.Sender.withDefaults()
	c.Receiver = c.Receiver.withDefaults()
	if c.TickEvery <= 0 {
		c.TickEvery = c.Sender.RetransmitAfter / 4
	}
	if c.MaxBatch <= 0 {
		c.MaxBatch = 64 << 10
	}
	if c.MaxQueued <= 0 {
		c.MaxQueued = int(2*c.Sender.Window) + 16<<20
	}
	if c.MaxLogBytes <= 0 {
		c.MaxLogBytes = DefaultMaxLogBytes
	}
	if c.Logf == nil {
		c.Logf = log.Printf
	}
	return c
}

// Message is a guest message as delivered to its destination's inbox.
// Data must not be modified: it may be shared with the sender's log.
type Message struct {
	Src   uint32
	Tag   int32
	Epoch uint64 // the sender's epoch when it sent
	Seq   uint64 // position in channel Src→Dst, from 1
	Data  []byte
}

// Endpoint carries the messages of one host's workers. It owns the Sender
// and Receiver of every channel with a local end, routes frames to links
// by host, coalesces them into batches and runs the retransmit timers. One
// goroutine (the loop) touches the channel cores; each link has a reader
// and a writer goroutine. Methods are safe for concurrent use.
type Endpoint struct {
	cfg   EndpointConfig
	route atomic.Pointer[func(rank uint32) HostID] // cfg.Route, then SetRoute's

	mu      sync.RWMutex
	chans   map[uint64]*channel
	workers map[uint32]*worker

	qmu     sync.Mutex
	sends   []sendReq
	inbound []inBatch
	events  []func()
	afterq  []func() // run by the loop once what was queued before is done
	wake    chan struct{}

	closing chan struct{}
	closed  atomic.Bool
	wg      sync.WaitGroup

	loop   loopState // owned by the loop goroutine
	ctr    counters
	logged atomic.Int64 // LogBytes

	lim logLimit

	staleMu sync.Mutex
	stale   map[HostID]uint64 // the incarnation each stale peer was logged as
}

// channel is one direction src→dst with at least one local end.
type channel struct {
	src, dst uint32
	sender   *Sender          // if src is local; loop only
	receiver *Receiver        // if dst is local; loop only
	local    bool             // both ends local
	overflow []sendReq        // loop only: admitted but refused by the Sender
	held     map[uint64]Frame // loop only: stamped with an epoch dst has not reached
	ackDue   bool             // loop only
	flags    chanFlags        // loop only
	told     uint64           // loop only: the receiver's stability its last ACK carried
	dueAt    uint64           // loop only: tick after which stability goes in an ACK of its own

	mu      sync.Mutex // guards used, waiting and refused
	cond    sync.Cond
	used    int64 // payload bytes admitted and not yet acked
	waiting int
	refused chan struct{} // the inbox notify of a sender TrySend refused
}

// worker is a local rank.
type worker struct {
	epoch    atomic.Uint64
	in       inbox
	ahead    uint64     // loop only: the newest epoch OnEpochAhead was told
	held     []*channel // loop only: channels to it holding frames
	arriving bool       // loop only: moved here by SetRoute, not yet restored
	ended    bool       // loop only: its program ended (Ended)
	// left (loop only): its state was taken to go on elsewhere (Snapshot
	// without a cut): what it is given here from then on may not be in
	// that state, so its acks claim nothing of its cuts until a Restore.
	left bool
	// gone (loop only): its state is going to another host (Leave): it
	// acks nothing until a Restore or Stayed.
	gone bool
}

type sendReq struct {
	ch    *channel
	tag   int32
	epoch uint64
	data  []byte
}

// NewEndpoint starts an Endpoint. Close stops it.
func NewEndpoint(cfg EndpointConfig) (*Endpoint, error) {
	if cfg.Host == "" || cfg.Route == nil {
		return nil, fmt.Errorf("transport: endpoint needs Host and Route")
	}
	e := &Endpoint{
		cfg:     cfg.withDefaults(),
		chans:   map[uint64]*channel{},
		workers: map[uint32]*worker{},
		wake:    make(chan struct{}, 1),
		closing: make(chan struct{}),
	}
	e.lim.cond.L = &e.lim.mu
	route := e.cfg.Route
	e.route.Store(&route)
	e.loop.init()
	for _, r := range cfg.Restoring {
		if !e.isLocal(r) {
			return nil, fmt.Errorf("transport: rank %d to restore is not on host %s", r, cfg.Host)
		}
		e.loop.arrive(e.worker(r))
	}
	e.wg.Add(1)
	go e.run()
	return e, nil
}

func (e *Endpoint) hostOf(rank uint32) HostID { return (*e.route.Load())(rank) }

func (e *Endpoint) isLocal(rank uint32) bool { return e.hostOf(rank) == e.cfg.Host }

// channel returns channel src→dst, creating it; nil if neither end is local.
func (e *Endpoint) channel(src, dst uint32) *channel {
	k := uint64(src)<<32 | uint64(dst)
	e.mu.RLock()
	ch := e.chans[k]
	e.mu.RUnlock()
	if ch != nil {
		return ch
	}
	ls, ld := e.isLocal(src), e.isLocal(dst)
	if !ls && !ld {
		return nil
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if ch = e.chans[k]; ch != nil {
		return ch
	}
	ch = &channel{src: src, dst: dst, local: ls && ld}
	ch.cond.L = &ch.mu
	if ls {
		ch.sender = NewSender(src, dst, e.cfg.Sender)
	}
	if ld {
		ch.receiver = NewReceiver(src, dst, e.cfg.Receiver)
	}
	e.chans[k] = ch
	return ch
}

// worker returns local rank r's state, creating it.
func (e *Endpoint) worker(r uint32) *worker {
	e.mu.RLock()
	w := e.workers[r]
	e.mu.RUnlock()
	if w != nil {
		return w
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if w = e.workers[r]; w == nil {
		w = newWorker()
		e.workers[r] = w
	}
	return w
}

func newWorker() *worker {
	w := &worker{}
	w.in.init()
	return w
}

// Send copies payload into channel src→dst and returns. It blocks only
// while the channel's window of unacked bytes is full. src must be local.
func (e *Endpoint) Send(src, dst uint32, tag int32, payload []byte) error {
	_, err := e.send(src, dst, tag, payload, true)
	return err
}

// TrySend is Send without waiting: when the window is full it sends
// nothing and returns false, and Inbox(src) receives a value once acks
// have made room in the window.
func (e *Endpoint) TrySend(src, dst uint32, tag int32, payload []byte) (bool, error) {
	return e.send(src, dst, tag, payload, false)
}

func (e *Endpoint) send(src, dst uint32, tag int32, payload []byte, wait bool) (bool, error) {
	if e.closed.Load() {
		return false, ErrClosed
	}
	if len(payload) > MaxPayload {
		return false, fmt.Errorf("%w: message of %d bytes", ErrTooLarge, len(payload))
	}
	if !e.isLocal(src) {
		return false, fmt.Errorf("transport: send from rank %d, which is not on host %s", src, e.cfg.Host)
	}
	ch := e.channel(src, dst)
	n := int64(len(payload))
	win := e.cfg.Sender.Window
	var notify chan struct{}
	if !wait {
		notify = e.worker(src).in.notify
	}
	if ok, err := e.admitLog(src, n, wait, notify); !ok {
		return false, err
	}
	ch.mu.Lock()
	for ch.used > 0 && ch.used+n > win {
		if e.closed.Load() {
			ch.mu.Unlock()
			return false, ErrClosed
		}
		if !wait {
			ch.refused = notify
			ch.mu.Unlock()
			return false, nil
		}
		ch.waiting++
		ch.cond.Wait()
		ch.waiting--
	}
	ch.used += n
	ch.mu.Unlock()
	e.addLogged(n)
	data := make([]byte, len(payload))
	copy(data, payload)
	req := sendReq{ch: ch, tag: tag, epoch: e.worker(src).epoch.Load(), data: data}
	e.qmu.Lock()
	e.sends = append(e.sends, req)
	e.qmu.Unlock()
	e.poke()
	return true, nil
}

// release returns n bytes of window to the channel's senders.
func (ch *channel) release(n int64) {
	if n <= 0 {
		return
	}
	ch.mu.Lock()
	ch.used = max(ch.used-n, 0)
	if ch.waiting > 0 {
		ch.cond.Broadcast()
	}
	refused := ch.refused
	ch.refused = nil
	ch.mu.Unlock()
	if refused != nil {
		select {
		case refused <- struct{}{}:
		default:
		}
	}
}

// Ended tells the Endpoint that local rank's program has ended and takes
// no more messages. Its inbox is emptied, and messages delivered to it from
// now on are dropped (still acked; counted in Counters.Discarded), so that
// an ended rank's inbox does not grow. Its channels go on: a checkpoint of
// the rank still shows what it was delivered. Restore undoes it.
func (e *Endpoint) Ended(rank uint32) {
	w := e.worker(rank)
	e.do(func() {
		w.ended = true
		e.ctr.discarded.Add(uint64(w.in.discard()))
	})
}

// SetEpoch sets the epoch stamped on messages local rank src sends from
// now on; with HoldLaterEpochs, messages to src held for that epoch are
// delivered now.
func (e *Endpoint) SetEpoch(src uint32, epoch uint64) {
	e.worker(src).epoch.Store(epoch)
	if e.cfg.HoldLaterEpochs {
		e.do(func() { e.loop.releaseHeld(e, src) })
	}
}

// Recv returns the first message in dst's inbox from src with tag (either
// may be Any), waiting for one. Each rank should have one receiving
// goroutine.
func (e *Endpoint) Recv(ctx context.Context, dst uint32, src, tag int32) (Message, error) {
	w := e.worker(dst)
	for {
		if m, ok := w.in.take(src, tag); ok {
			return m, nil
		}
		select {
		case <-w.in.notify:
		case <-ctx.Done():
			return Message{}, ctx.Err()
		case <-e.closing:
			return Message{}, ErrClosed
		}
	}
}

// TryRecv is Recv without waiting: ok is false when no message matches.
func (e *Endpoint) TryRecv(dst uint32, src, tag int32) (Message, bool) {
	return e.worker(dst).in.take(src, tag)
}

// Inbox returns a channel that receives a value whenever messages arrive
// for dst, or a window that refused a TrySend of dst's opens (coalesced:
// one value may stand for many). Recv waits on the same
// channel, so use either this with TryRecv or Recv, not both.
func (e *Endpoint) Inbox(dst uint32) <-chan struct{} { return e.worker(dst).in.notify }

// Stable drops messages with Seq ≤ seq of channel src→dst from its sender
// log: the receiver's committed checkpoint covers them.
func (e *Endpoint) Stable(src, dst uint32, seq uint64) {
	ch := e.channel(src, dst)
	if ch == nil || ch.sender == nil {
		return
	}
	e.do(func() { e.loop.stable(e, ch, seq) })
}

// SendControl queues a CONTROL frame to host.
func (e *Endpoint) SendControl(host HostID, kind uint8, body []byte) {
	f := Frame{Type: FrameControl, Kind: kind, Body: append([]byte(nil), body...)}
	e.do(func() { e.loop.emit(e, host, &f) })
}

// AddLink gives the Endpoint a link to host, new or after a reconnect. An
// older link to host is closed. Every unacked message to host's ranks is
// sent again on the new link.
func (e *Endpoint) AddLink(host HostID, l Link) {
	e.do(func() { e.loop.addLink(e, host, l) })
}

// do runs f on the loop goroutine.
func (e *Endpoint) do(f func()) {
	e.qmu.Lock()
	e.events = append(e.events, f)
	e.qmu.Unlock()
	e.poke()
}

func (e *Endpoint) poke() {
	select {
	case e.wake <- struct{}{}:
	default:
	}
}

// Close stops the Endpoint and closes its links. Blocked Send and Recv
// calls return ErrClosed.
func (e *Endpoint) Close() error {
	if e.closed.Swap(true) {
		return nil
	}
	close(e.closing)
	e.lim.mu.Lock()
	e.lim.cond.Broadcast()
	e.lim.mu.Unlock()
	e.mu.RLock()
	for _, ch := range e.chans {
		ch.mu.Lock()
		ch.cond.Broadcast()
		ch.mu.Unlock()
	}
	e.mu.RUnlock()
	e.wg.Wait()
	return nil
}
