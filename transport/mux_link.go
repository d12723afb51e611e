package transport

import (
	"errors"
	"fmt"
	"io"
	"sync"
)

// peerLink is the Endpoint's side of one Link: a writer goroutine sends
// the batches the loop hands it, a reader goroutine decodes what arrives.
type peerLink struct {
	endpoint *Endpoint
	host     HostID
	l        Link
	id       uint64
	out      []byte // loop only: frames not yet handed to the writer

	mu       sync.Mutex
	queue    [][]byte
	queued   int
	busy     bool // the writer has or is sending buffers
	loopWait bool // the loop holds frames until the writer is idle
	free     [][]byte
	dropped  int

	wake     chan struct{}
	dead     chan struct{}
	deadOnce sync.Once
}

// inBatch is the frames of one received buffer.
type inBatch struct {
	pl     *peerLink
	frames []Frame
}

func newPeerLink(e *Endpoint, host HostID, l Link, id uint64) *peerLink {
	pl := &peerLink{endpoint: e, host: host, l: l, id: id, wake: make(chan struct{}, 1), dead: make(chan struct{})}
	hello := Frame{Type: FrameHello, Version: FrameVersion, HostID: string(e.cfg.Host), ClusterID: e.cfg.ClusterID, Job: e.cfg.Job, Inc: e.cfg.Incarnation}
	pl.out = AppendFrame(pl.out, &hello)
	return pl
}

func (pl *peerLink) start(e *Endpoint) {
	pl.handoff(e)
	e.wg.Add(2)
	go pl.writer(e)
	go pl.reader(e)
}

// handoff queues the loop's pending frames for the writer.
func (pl *peerLink) handoff(e *Endpoint) {
	if len(pl.out) == 0 {
		return
	}
	pl.mu.Lock()
	pl.loopWait = false
	if pl.queued+len(pl.out) > e.cfg.MaxQueued {
		pl.dropped++
		pl.out = pl.out[:0]
		pl.mu.Unlock()
		return
	}
	pl.queue = append(pl.queue, pl.out)
	pl.queued += len(pl.out)
	pl.busy = true
	var next []byte
	if n := len(pl.free); n > 0 {
		next, pl.free = pl.free[n-1], pl.free[:n-1]
	}
	pl.mu.Unlock()
	if next == nil {
		next = make([]byte, 0, e.cfg.MaxBatch+8<<10)
	}
	pl.out = next
	select {
	case pl.wake <- struct{}{}:
	default:
	}
}

// offer hands pending frames to the writer if it is idle; otherwise they
// keep collecting until it is, or until a batch is full.
func (pl *peerLink) offer(e *Endpoint) {
	if len(pl.out) == 0 {
		return
	}
	pl.mu.Lock()
	busy := pl.busy
	if busy {
		pl.loopWait = true
	}
	pl.mu.Unlock()
	if !busy {
		pl.handoff(e)
	}
}

// congested reports whether more than a batch waits for the writer.
func (pl *peerLink) congested(e *Endpoint) bool {
	pl.mu.Lock()
	defer pl.mu.Unlock()
	return pl.queued > e.cfg.MaxBatch
}

func (pl *peerLink) writer(e *Endpoint) {
	defer e.wg.Done()
	var bufs [][]byte
	for {
		pl.mu.Lock()
		for len(pl.queue) == 0 {
			pl.busy = false
			poke := pl.loopWait
			pl.mu.Unlock()
			if poke {
				e.poke()
			}
			select {
			case <-pl.wake:
			case <-pl.dead:
				return
			}
			pl.mu.Lock()
		}
		bufs, pl.queue = pl.queue, bufs[:0]
		pl.mu.Unlock()
		for i, b := range bufs {
			if err := pl.l.Send(b); err != nil {
				pl.kill(e.linkErr(pl, "send", err))
				return
			}
			e.ctr.bytesSent.Add(uint64(len(b)))
			pl.mu.Lock()
			pl.queued -= len(b)
			if len(pl.free) < 4 && cap(b) <= 4*e.cfg.MaxBatch {
				pl.free = append(pl.free, b[:0])
			}
			pl.mu.Unlock()
			bufs[i] = nil
		}
	}
}

func (pl *peerLink) reader(e *Endpoint) {
	defer e.wg.Done()
	first := true
	for {
		buf, err := pl.l.Recv()
		if err != nil {
			pl.kill(e.linkErr(pl, "receive", err))
			return
		}
		e.ctr.bytesRecv.Add(uint64(len(buf)))
		frames, err := DecodeFrames(nil, buf)
		if err != nil {
			e.cfg.Logf("transport: peer %s sent a malformed buffer, disconnecting: %v", pl.host, err)
			pl.kill(err)
			return
		}
		if first {
			if err := e.checkHello(pl, frames); err != nil {
				if !errors.Is(err, ErrStale) || e.firstStale(pl.host, frames[0].Inc) {
					e.cfg.Logf("%v", err)
				}
				pl.kill(err)
				return
			}
			frames, first = frames[1:], false
		}
		if len(frames) == 0 {
			continue
		}
		e.qmu.Lock()
		e.inbound = append(e.inbound, inBatch{pl: pl, frames: frames})
		e.qmu.Unlock()
		e.poke()
	}
}

func (e *Endpoint) checkHello(pl *peerLink, frames []Frame) error {
	if len(frames) == 0 || frames[0].Type != FrameHello {
		return fmt.Errorf("%w: peer %s did not start with HELLO", ErrHandshake, pl.host)
	}
	h := &frames[0]
	switch {
	case h.Version != FrameVersion:
		return fmt.Errorf("%w: peer %s speaks version %d, this host %d", ErrHandshake, pl.host, h.Version, FrameVersion)
	case HostID(h.HostID) != pl.host:
		return fmt.Errorf("%w: peer expected to be %s says it is %q", ErrHandshake, pl.host, h.HostID)
	case h.ClusterID != "" && e.cfg.ClusterID != "" && h.ClusterID != e.cfg.ClusterID:
		return fmt.Errorf("%w: peer %s is in cluster %q, this host in %q", ErrHandshake, pl.host, h.ClusterID, e.cfg.ClusterID)
	case h.Job != "" && e.cfg.Job != "" && h.Job != e.cfg.Job:
		return fmt.Errorf("%w: peer %s runs job %q, this host %q", ErrHandshake, pl.host, h.Job, e.cfg.Job)
	case h.Inc < e.cfg.Incarnation:
		e.ctr.staleLinks.Add(1)
		return fmt.Errorf("%w: peer %s is of incarnation %d of the job, this host of %d (a host declared dead that came back)", ErrStale, pl.host, h.Inc, e.cfg.Incarnation)
	case h.Inc > e.cfg.Incarnation:
		return fmt.Errorf("%w: peer %s is of incarnation %d of the job already, this host still of %d", ErrHandshake, pl.host, h.Inc, e.cfg.Incarnation)
	}
	return nil
}

// firstStale reports whether host was not refused as of incarnation inc
// before: a stale host that keeps redialling is logged once.
func (e *Endpoint) firstStale(host HostID, inc uint64) bool {
	e.staleMu.Lock()
	defer e.staleMu.Unlock()
	if e.stale == nil {
		e.stale = map[HostID]uint64{}
	}
	if last, ok := e.stale[host]; ok && last == inc {
		return false
	}
	e.stale[host] = inc
	return true
}

func (e *Endpoint) linkErr(pl *peerLink, op string, err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, ErrLinkClosed) {
		return fmt.Errorf("%w: %s to %s", ErrLinkClosed, op, pl.host)
	}
	return fmt.Errorf("transport: link to %s: %s: %w", pl.host, op, err)
}

// kill closes the link once and tells the loop.
func (pl *peerLink) kill(err error) {
	pl.deadOnce.Do(func() {
		close(pl.dead)
		pl.l.Close()
		pl.endpoint.do(func() { pl.endpoint.loop.linkDown(pl.endpoint, pl, err) })
	})
}
