package transport

import (
	"io"
	"sync"
)

// pipeDepth is how many buffers a Pipe holds in each direction before Send
// blocks.
const pipeDepth = 128

// Pipe returns the two ends of an in-memory Link. Each direction holds up
// to 128 buffers; Send blocks while the other end has not taken them
// (flow control). Send copies its buffer. Closing either end closes both:
// Send then fails with ErrLinkClosed and Recv returns io.EOF.
func Pipe() (Link, Link) {
	ab := make(chan []byte, pipeDepth)
	ba := make(chan []byte, pipeDepth)
	sh := &pipeShared{done: make(chan struct{})}
	return &pipeEnd{in: ba, out: ab, sh: sh}, &pipeEnd{in: ab, out: ba, sh: sh}
}

type pipeShared struct {
	done chan struct{}
	once sync.Once
}

type pipeEnd struct {
	in  <-chan []byte
	out chan<- []byte
	sh  *pipeShared
}

func (p *pipeEnd) Send(buf []byte) error {
	select {
	case <-p.sh.done:
		return ErrLinkClosed
	default:
	}
	c := make([]byte, len(buf))
	copy(c, buf)
	select {
	case p.out <- c:
		return nil
	case <-p.sh.done:
		return ErrLinkClosed
	}
}

func (p *pipeEnd) Recv() ([]byte, error) {
	select {
	case b := <-p.in:
		return b, nil
	case <-p.sh.done:
		return nil, io.EOF
	}
}

func (p *pipeEnd) Close() error {
	p.sh.once.Do(func() { close(p.sh.done) })
	return nil
}
