package jobctl

import (
	"context"
	"fmt"
	"time"
)

// handshakeTimeout bounds a dial and its HELLOs (at least: the failure
// timeout, if longer).
const handshakeTimeout = 5 * time.Second

// dialLoop keeps a participant's stream to the coordinator's host: it
// dials, and dials again whenever the stream breaks, until the Endpoint
// closes.
func (e *Endpoint) dialLoop(p *peer) {
	defer e.wg.Done()
	const first = 50 * time.Millisecond
	wait, logged := first, false
	for e.ctx.Err() == nil {
		err := e.dialOnce(p)
		if err == nil {
			wait, logged = first, false
		} else if e.ctx.Err() == nil && !logged {
			e.logf("dial the coordinator's host %s (h%d): %v (retrying)", p.name, p.id, err)
			logged = true
		}
		select {
		case <-time.After(wait):
		case <-e.ctx.Done():
			return
		}
		wait = min(2*wait, max(e.cfg.FailureTimeout/4, first))
	}
}

// dialOnce opens a stream to the coordinator's host, says HELLO and
// serves the stream until it breaks.
func (e *Endpoint) dialOnce(p *peer) error {
	ctx, cancel := context.WithTimeout(e.ctx, max(e.cfg.FailureTimeout, handshakeTimeout))
	defer cancel()
	name, s, err := e.cfg.Dial(ctx)
	if err != nil {
		return err
	}
	if name != p.name {
		s.Close()
		return fmt.Errorf("%w: host %s answered", ErrNotInJob, name)
	}
	hello, err := e.hello(ctx, s)
	if err != nil {
		s.Close()
		return err
	}
	e.run(p, s, hello)
	return nil
}

// hello sends this Endpoint's HELLO on s and reads the peer's.
func (e *Endpoint) hello(ctx context.Context, s Stream) (frame, error) {
	stop := context.AfterFunc(ctx, func() { s.Close() })
	defer stop()
	if _, err := s.Write(appendFrame(nil, e.frame(kindHello, 0, 0, helloBody(e.instance)))); err != nil {
		return frame{}, err
	}
	f, err := readFrame(s)
	if err == nil && (f.kind != kindHello || f.job != e.cfg.Job) {
		err = fmt.Errorf("%w: %v instead of HELLO of job %s", ErrBadFrame, f, e.cfg.Job)
	}
	if err != nil && ctx.Err() != nil {
		err = fmt.Errorf("no HELLO within %v", max(e.cfg.FailureTimeout, handshakeTimeout))
	}
	return f, err
}

// accept serves a stream that peer name opened with hello (read by the
// Hub): this host must be the job's coordinator, and the peer one of the
// job's other hosts.
func (e *Endpoint) accept(name string, s Stream, hello frame) error {
	if !e.begin() {
		return ErrClosed
	}
	defer e.wg.Done()
	var p *peer
	for _, q := range e.peers {
		if q != nil && q.name == name {
			p = q
		}
	}
	if p == nil || e.cfg.Self != e.cfg.Coordinator {
		return fmt.Errorf("%w: a stream from host %s, which this host does not coordinate in job %s", ErrNotInJob, name, e.cfg.Job)
	}
	if _, err := s.Write(appendFrame(nil, e.frame(kindHello, 0, 0, helloBody(e.instance)))); err != nil {
		return err
	}
	e.run(p, s, hello)
	return nil
}
