package jobctl

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"io"
	"log"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/librahost/librahost/ckpt"
)

// Config configures one host's Endpoint of a job. Zero values mean the
// defaults.
type Config struct {
	Job   string   // the job's ID (at most 255 bytes)
	Hosts []string // the job's hosts (their certificates' host IDs) by ckpt.HostID
	Self  ckpt.HostID
	// Coordinator is the host that runs the job's coordinator: every
	// other host keeps a stream to it.
	Coordinator ckpt.HostID
	// CoordinatorAddr is the UDP address (host:port) of the coordinator's
	// host, which the other hosts dial (Hub.Open).
	CoordinatorAddr string
	// FailureTimeout is the job's (ckpt.ProtoConfig's): a heartbeat goes
	// out on a stream that sent nothing for a quarter of it, and a stream
	// that heard nothing for all of it is closed (and redialed). Default
	// ckpt.DefaultFailureTimeout.
	FailureTimeout time.Duration
	// Inc is the incarnation to start as (SetInc raises it).
	Inc uint64
	// Logf gets one line per stream refused or broken. Default log.Printf.
	Logf func(format string, args ...any)
	// Dial opens a stream to the coordinator's host and returns the host
	// ID that answered; a participant needs it (Hub.Open sets it).
	Dial func(ctx context.Context) (string, Stream, error)
}

// Stream is one bidirectional stream between two hosts. Close ends it both
// ways at once.
type Stream = io.ReadWriteCloser

// Received is a control message that came from host From at time At.
type Received struct {
	From ckpt.HostID
	Msg  ckpt.Msg
	At   time.Time
}

// Endpoint carries one job's control messages between this host and the
// others: a participant keeps one stream to the coordinator's host, the
// coordinator's host one to every participant. One Endpoint per job and
// host.
type Endpoint struct {
	cfg      Config
	instance uint64
	inc      atomic.Uint64
	peers    []*peer // by host: nil for this host and, on a participant, every host but the coordinator
	recv     chan Received
	ctx      context.Context
	cancel   context.CancelFunc
	wg       sync.WaitGroup
	onClose  func()
	mu       sync.Mutex
	closed   bool // no more goroutines (guards wg.Add)

	inMu   sync.Mutex
	inQ    []Received
	inWake chan struct{}
}

// New returns the Endpoint cfg describes and, on a participant, starts
// dialing the coordinator's host. Most callers use Hub.Open.
func New(cfg Config) (*Endpoint, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	var ib [8]byte
	rand.Read(ib[:])
	e := &Endpoint{cfg: cfg, instance: binary.BigEndian.Uint64(ib[:]) | 1, peers: make([]*peer, len(cfg.Hosts)),
		recv: make(chan Received), inWake: make(chan struct{}, 1)}
	e.inc.Store(cfg.Inc)
	e.ctx, e.cancel = context.WithCancel(context.Background())
	for h := range cfg.Hosts {
		if id := ckpt.HostID(h); id != cfg.Self && (cfg.Self == cfg.Coordinator || id == cfg.Coordinator) {
			e.peers[h] = newPeer(id, cfg.Hosts[h])
		}
	}
	e.wg.Add(1)
	go e.deliver()
	if cfg.Self != cfg.Coordinator {
		e.wg.Add(1)
		go e.dialLoop(e.peers[cfg.Coordinator])
	}
	return e, nil
}

func (c *Config) validate() error {
	switch {
	case c.Job == "" || len(c.Job) > maxJobID:
		return fmt.Errorf("%w: job ID %q: want 1 to %d bytes", ErrConfig, c.Job, maxJobID)
	case len(c.Hosts) == 0:
		return fmt.Errorf("%w: a job of no hosts", ErrConfig)
	case c.Self < 0 || int(c.Self) >= len(c.Hosts):
		return fmt.Errorf("%w: this host h%d is not among the job's %d", ErrConfig, c.Self, len(c.Hosts))
	case c.Coordinator < 0 || int(c.Coordinator) >= len(c.Hosts):
		return fmt.Errorf("%w: coordinator h%d is not among the job's %d hosts", ErrConfig, c.Coordinator, len(c.Hosts))
	case c.Self != c.Coordinator && c.Dial == nil:
		return fmt.Errorf("%w: a participant needs a way to dial the coordinator's host", ErrConfig)
	case c.FailureTimeout < 0:
		return fmt.Errorf("%w: failure timeout %v: want more than 0", ErrConfig, c.FailureTimeout)
	}
	for i, h := range c.Hosts {
		if slices.Index(c.Hosts, h) != i {
			return fmt.Errorf("%w: host %q given twice", ErrConfig, h)
		}
	}
	if c.FailureTimeout == 0 {
		c.FailureTimeout = ckpt.DefaultFailureTimeout
	}
	if c.Logf == nil {
		c.Logf = log.Printf
	}
	c.Hosts = slices.Clone(c.Hosts)
	return nil
}

// Recv returns the messages received, in the order each host sent them
// (a message this host sent itself comes back here too). It is closed by
// Close.
func (e *Endpoint) Recv() <-chan Received { return e.recv }

// Send queues m for host to and returns at once. A message to this host
// comes back on Recv. Messages to a host arrive in order, once, as long as
// both Endpoints live: what a broken stream lost is sent again on the next.
func (e *Endpoint) Send(to ckpt.HostID, m ckpt.Msg) error {
	if e.ctx.Err() != nil {
		return ErrClosed
	}
	if to == e.cfg.Self {
		e.push(Received{From: to, Msg: m, At: time.Now()})
		return nil
	}
	if to < 0 || int(to) >= len(e.peers) || e.peers[to] == nil {
		return fmt.Errorf("%w: h%d from h%d of job %s", ErrNotInJob, to, e.cfg.Self, e.cfg.Job)
	}
	e.peers[to].enqueue(ckpt.AppendMsg(nil, m))
	return nil
}

// LastHeard returns when a frame of host h (of this job and incarnation,
// or a newer one) last arrived; zero if none did. A driver feeds it to
// its core before each Tick.
func (e *Endpoint) LastHeard(h ckpt.HostID) time.Time {
	if h < 0 || int(h) >= len(e.peers) || e.peers[h] == nil {
		return time.Time{}
	}
	if ns := e.peers[h].heard.Load(); ns != 0 {
		return time.Unix(0, ns)
	}
	return time.Time{}
}

// TellCoordinator tells the job's coordinator core when each host was
// last heard here (LastHeard); its owner calls it before each Tick.
func (e *Endpoint) TellCoordinator(c *ckpt.EpochCoordinator) {
	for h, p := range e.peers {
		if p != nil {
			c.Heard(ckpt.HostID(h), e.LastHeard(ckpt.HostID(h)))
		}
	}
}

// TellParticipant tells this host's participant core when the
// coordinator's host was last heard here; its owner calls it before each
// Tick.
func (e *Endpoint) TellParticipant(p *ckpt.Participant) {
	if at := e.LastHeard(e.cfg.Coordinator); !at.IsZero() {
		p.Heard(at)
	}
}

// SetInc raises the incarnation this host runs as: frames go out stamped
// with it, and frames of older incarnations are dropped unheard.
func (e *Endpoint) SetInc(inc uint64) {
	for {
		old := e.inc.Load()
		if inc <= old || e.inc.CompareAndSwap(old, inc) {
			return
		}
	}
}

// Close ends every stream of the Endpoint and closes Recv.
func (e *Endpoint) Close() error {
	e.mu.Lock()
	e.closed = true
	e.mu.Unlock()
	e.cancel()
	for _, p := range e.peers {
		if p != nil {
			p.closeConn()
		}
	}
	e.wg.Wait()
	if e.onClose != nil {
		e.onClose()
	}
	return nil
}

// begin counts a goroutine of the Endpoint in; false once it is closing.
func (e *Endpoint) begin() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return false
	}
	e.wg.Add(1)
	return true
}

// push queues a received message for Recv; it never blocks a stream.
func (e *Endpoint) push(r Received) {
	e.inMu.Lock()
	e.inQ = append(e.inQ, r)
	e.inMu.Unlock()
	select {
	case e.inWake <- struct{}{}:
	default:
	}
}

// deliver passes received messages to Recv in order.
func (e *Endpoint) deliver() {
	defer e.wg.Done()
	defer close(e.recv)
	for {
		e.inMu.Lock()
		q := e.inQ
		e.inQ = nil
		e.inMu.Unlock()
		for _, r := range q {
			select {
			case e.recv <- r:
			case <-e.ctx.Done():
				return
			}
		}
		select {
		case <-e.inWake:
		case <-e.ctx.Done():
			return
		}
	}
}

func (e *Endpoint) logf(format string, args ...any) {
	e.cfg.Logf("jobctl: job %s: "+format, append([]any{e.cfg.Job}, args...)...)
}

func (e *Endpoint) frame(kind uint8, seq, ack uint64, body []byte) frame {
	return frame{kind: kind, inc: e.inc.Load(), seq: seq, ack: ack, job: e.cfg.Job, body: body}
}
