package jobrec

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
)

// Reader reads a log's frames in the order they were written.
type Reader struct {
	l   *Log
	seg int   // the segment read
	pos int64 // where in it
	f   *os.File
}

// NewReader reads l from its oldest output kept, or, fromNow, from what
// comes next.
func (l *Log) NewReader(fromNow bool) *Reader {
	l.mu.Lock()
	defer l.mu.Unlock()
	r := &Reader{l: l}
	if len(l.segs) > 0 {
		r.seg = l.segs[0].n
		if fromNow {
			last := l.segs[len(l.segs)-1]
			r.seg, r.pos = last.n, last.size
		}
	}
	return r
}

// Close releases the reader's file.
func (r *Reader) Close() error {
	if r.f == nil {
		return nil
	}
	err := r.f.Close()
	r.f = nil
	return err
}

// Next returns the next chunk. At the end of what is written it returns
// io.EOF, unless follow: then it waits for more until the log is
// finished (io.EOF) or ctx ends (its error). A reader that fell behind
// the log's bound goes on from the oldest output kept.
func (r *Reader) Next(ctx context.Context, follow bool) (Chunk, error) {
	for {
		l := r.l
		l.mu.Lock()
		segs, done, wake := slices.Clone(l.segs), l.done, l.wake // Append changes sizes in place
		l.mu.Unlock()
		if len(segs) == 0 {
			return Chunk{}, io.EOF
		}
		if r.seg < segs[0].n {
			r.Close() // removed under us
			r.seg, r.pos = segs[0].n, 0
		}
		i := r.seg - segs[0].n
		if i < len(segs) && r.pos < segs[i].size {
			c, err := r.read(segs[i].size)
			if errors.Is(err, fs.ErrNotExist) {
				if done {
					return Chunk{}, fmt.Errorf("%w: %s was removed", ErrOutputGone, r.l.dir)
				}
				continue // removed since: from the oldest kept
			}
			return c, err
		}
		if i+1 < len(segs) {
			r.Close()
			r.seg, r.pos = r.seg+1, 0
			continue
		}
		if done || !follow {
			return Chunk{}, io.EOF
		}
		select {
		case <-wake:
		case <-ctx.Done():
			return Chunk{}, context.Cause(ctx)
		}
	}
}

// read reads the frame at r.pos of segment r.seg, which holds size bytes.
func (r *Reader) read(size int64) (Chunk, error) {
	if r.f == nil {
		f, err := os.Open(filepath.Join(r.l.dir, segName(r.seg)))
		if err != nil {
			return Chunk{}, err
		}
		r.f = f
	}
	var h [frameHeader]byte
	if size-r.pos < frameHeader {
		return Chunk{}, r.damaged(fmt.Errorf("%w: a part of a frame", ErrDamaged))
	}
	if _, err := r.f.ReadAt(h[:], r.pos); err != nil {
		return Chunk{}, r.damaged(err)
	}
	n, err := frameLen(h[:])
	if err != nil || int64(n) > size-r.pos-frameHeader {
		return Chunk{}, r.damaged(fmt.Errorf("%w: a frame past the segment's end", ErrDamaged))
	}
	b := make([]byte, frameHeader+n)
	if _, err := r.f.ReadAt(b, r.pos); err != nil {
		return Chunk{}, r.damaged(err)
	}
	c, err := decodeFrame(b)
	if err != nil {
		return Chunk{}, r.damaged(err)
	}
	r.pos += int64(len(b))
	return c, nil
}

func (r *Reader) damaged(err error) error {
	if !errors.Is(err, ErrDamaged) {
		err = fmt.Errorf("%w: %v", ErrDamaged, err)
	}
	return fmt.Errorf("output %s at byte %d: %w", filepath.Join(r.l.dir, segName(r.seg)), r.pos, err)
}
