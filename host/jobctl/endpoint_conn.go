package jobctl

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/librahost/librahost/ckpt"
)

// conn is one stream to a peer, served by a reader (the goroutine that
// called run) and a writer.
type conn struct {
	p    *peer
	s    Stream
	wake chan struct{} // messages to send
	done chan struct{}
	once sync.Once
}

func (c *conn) poke() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

func (c *conn) close() {
	c.once.Do(func() {
		close(c.done)
		c.s.Close()
	})
}

// run serves stream s to p, whose HELLO it was, until the stream breaks
// or the Endpoint closes.
func (e *Endpoint) run(p *peer, s Stream, hello frame) {
	c := &conn{p: p, s: s, wake: make(chan struct{}, 1), done: make(chan struct{})}
	p.install(c, helloInstance(hello))
	defer p.uninstall(c)
	defer c.close()
	stop := context.AfterFunc(e.ctx, c.close)
	defer stop()
	if hello.inc >= e.inc.Load() {
		p.heard.Store(time.Now().UnixNano())
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := e.write(c); err != nil && e.ctx.Err() == nil {
			e.logf("stream to host %s (h%d): %v: closed", p.name, p.id, err)
		}
		c.close()
	}()
	if err := e.read(c); err != nil && e.ctx.Err() == nil {
		e.logf("stream from host %s (h%d): %v: closed", p.name, p.id, err)
	}
	c.close()
	wg.Wait()
}

// write sends the peer's queued messages (every one not acked, on a new
// stream), and a BEAT when nothing went out for a quarter of the failure
// timeout.
func (e *Endpoint) write(c *conn) error {
	beat := e.cfg.FailureTimeout / 4
	t := time.NewTimer(beat)
	defer t.Stop()
	var sent uint64
	var buf bytes.Buffer
	for {
		out, ack := c.p.unsent(sent)
		buf.Reset()
		for _, m := range out {
			buf.Write(appendFrame(nil, e.frame(kindMsg, m.seq, ack, m.body)))
			sent = m.seq
		}
		if buf.Len() > 0 {
			if _, err := c.s.Write(buf.Bytes()); err != nil {
				return err
			}
			t.Reset(beat)
		}
		select {
		case <-c.wake:
		case <-t.C:
			_, ack := c.p.unsent(sent)
			if _, err := c.s.Write(appendFrame(nil, e.frame(kindBeat, 0, ack, nil))); err != nil {
				return err
			}
			t.Reset(beat)
		case <-c.done:
			return nil
		}
	}
}

// read takes the peer's frames until the stream breaks, or is silent for
// the failure timeout.
func (e *Endpoint) read(c *conn) error {
	silent := time.AfterFunc(e.cfg.FailureTimeout, c.close)
	defer silent.Stop()
	for {
		f, err := readFrame(c.s)
		if err != nil {
			select {
			case <-c.done:
				return nil
			default:
			}
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		silent.Reset(e.cfg.FailureTimeout)
		if err := e.take(c.p, f); err != nil {
			return err
		}
	}
}

// take handles one frame from p: a frame of another job or of an older
// incarnation is dropped unheard.
func (e *Endpoint) take(p *peer, f frame) error {
	if f.job != e.cfg.Job {
		return nil
	}
	fresh := false
	switch f.kind {
	case kindHello:
		return fmt.Errorf("%w: a second HELLO", ErrBadFrame)
	case kindMsg:
		var ok bool
		if fresh, ok = p.take(f.seq); !ok {
			return fmt.Errorf("%w: message %d out of order", ErrBadFrame, f.seq)
		}
	}
	p.acked(f.ack)
	if f.inc < e.inc.Load() {
		return nil
	}
	now := time.Now()
	p.heard.Store(now.UnixNano())
	if !fresh {
		return nil
	}
	m, err := ckpt.DecodeMsg(f.body)
	if err != nil {
		return err
	}
	if m.From != p.id {
		return fmt.Errorf("%w: host h%d sent a message from h%d", ErrBadFrame, p.id, m.From)
	}
	e.push(Received{From: p.id, Msg: m, At: now})
	return nil
}
