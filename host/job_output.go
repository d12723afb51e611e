package host

import (
	"bytes"
	"fmt"
	"io"
	"sync"
)

// rankWriter writes one worker's output to a shared stream in whole lines
// (so that lines of different ranks never mix), with an optional
// "[rank] " prefix.
type rankWriter struct {
	w      io.Writer
	mu     *sync.Mutex
	prefix []byte
	buf    []byte
}

// NewRankWriter returns a writer of rank's output to w, which it shares
// with the other ranks' writers under mu: it writes whole lines only,
// each started with "[rank] " if prefix is set. Flush writes out an
// unterminated last line. A nil w gives a nil writer.
func NewRankWriter(w io.Writer, mu *sync.Mutex, rank int, prefix bool) io.Writer {
	if w == nil {
		return nil
	}
	rw := &rankWriter{w: w, mu: mu}
	if prefix {
		rw.prefix = []byte(fmt.Sprintf("[%d] ", rank))
	}
	return rw
}

func (rw *rankWriter) Write(p []byte) (int, error) {
	rw.buf = append(rw.buf, p...)
	i := bytes.LastIndexByte(rw.buf, '\n')
	if i < 0 && len(rw.buf) < 64<<10 {
		return len(p), nil
	}
	lines := rw.buf
	if i >= 0 {
		lines = rw.buf[:i+1]
	}
	rw.mu.Lock()
	err := rw.emit(lines)
	rw.mu.Unlock()
	rw.buf = append(rw.buf[:0], rw.buf[len(lines):]...)
	return len(p), err
}

// Flush writes out what is left of an unterminated last line.
func (rw *rankWriter) Flush() error {
	if len(rw.buf) == 0 {
		return nil
	}
	rw.mu.Lock()
	err := rw.emit(rw.buf)
	rw.mu.Unlock()
	rw.buf = nil
	return err
}

func (rw *rankWriter) emit(b []byte) error {
	if rw.prefix == nil {
		_, err := rw.w.Write(b)
		return err
	}
	var out []byte
	for len(b) > 0 {
		i := bytes.IndexByte(b, '\n')
		line := b
		if i >= 0 {
			line = b[:i+1]
		}
		out = append(append(out, rw.prefix...), line...)
		b = b[len(line):]
	}
	_, err := rw.w.Write(out)
	return err
}
