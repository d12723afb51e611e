package wasi

import (
	"io"
)

// stdinReader serves fd 0. A goroutine reads the configured reader one
// chunk at a time, only when the guest asks, so poll_oneoff can wait for
// stdin next to its timers and a blocked read can be interrupted.
type stdinReader struct {
	r       io.Reader
	req     chan struct{}
	ch      chan stdinChunk
	waiting bool // a request is outstanding
	buf     []byte
	err     error // sticky once buf is drained
}

type stdinChunk struct {
	b   []byte
	err error
}

func newStdinReader(r io.Reader) *stdinReader {
	if r == nil {
		return &stdinReader{err: io.EOF}
	}
	return &stdinReader{r: r}
}

func (in *stdinReader) loop() {
	b := make([]byte, 32<<10)
	for range in.req {
		n, err := in.r.Read(b)
		in.ch <- stdinChunk{append([]byte(nil), b[:n]...), err}
		if err != nil {
			return
		}
	}
}

// ready reports whether a read would not block.
func (in *stdinReader) ready() bool {
	return len(in.buf) > 0 || in.err != nil
}

// wait returns a channel that delivers the next chunk, asking for it if
// needed. The receiver must pass what it receives to accept.
func (in *stdinReader) wait() <-chan stdinChunk {
	if in.req == nil {
		in.req = make(chan struct{}, 1)
		in.ch = make(chan stdinChunk, 1)
		go in.loop()
	}
	if !in.waiting {
		in.waiting = true
		in.req <- struct{}{}
	}
	return in.ch
}

func (in *stdinReader) accept(c stdinChunk) {
	in.waiting = false
	in.buf = append(in.buf, c.b...)
	if c.err != nil {
		in.err = c.err
		close(in.req)
	}
}

// poll takes a chunk if one arrived, without blocking.
func (in *stdinReader) poll() {
	if in.ready() || !in.waiting {
		return
	}
	select {
	case c := <-in.ch:
		in.accept(c)
	default:
	}
}

// take copies buffered data into the iovecs. At end of input it returns 0.
func (in *stdinReader) take(iov [][]byte) (int, errno) {
	n := 0
	for _, b := range iov {
		c := copy(b, in.buf[n:])
		n += c
		if c < len(b) {
			break
		}
	}
	in.buf = in.buf[n:]
	if n == 0 && in.err != nil && in.err != io.EOF {
		return 0, errnoIo
	}
	return n, errnoSuccess
}
