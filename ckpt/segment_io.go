package ckpt

import (
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"slices"

	"golang.org/x/sys/unix"
)

// maxIovecs is the most buffers one pwritev takes (Linux's IOV_MAX).
const maxIovecs = 1024

// holeBlock is the granularity at which Open looks for ranges to punch.
const holeBlock = 4096

// errValueMissing is a value whose segment, or whose bytes, are gone.
var errValueMissing = errors.New("value missing")

// write stores vals in the current segment, in its spare ranges or at its
// end, with one pwritev per run of up to maxIovecs values, and returns the
// offset of each. Writer only; failpoint "segment:write".
func (sg *segments) write(vals [][]byte) ([]int64, error) {
	if err := fail("segment:write"); err != nil {
		return nil, err
	}
	offs, runs := sg.place(vals)
	for _, r := range runs {
		at := r.off
		for vs := r.vals; len(vs) > 0; {
			n := min(len(vs), maxIovecs)
			next, err := pwritevFile(sg.curFile, vs[:n], at)
			if err != nil {
				return nil, fmt.Errorf("write segment %s: %w", sg.path(sg.cur), err)
			}
			at, vs = next, vs[n:]
		}
		sg.end = max(sg.end, at)
	}
	for _, v := range vals {
		sg.pending += int64(len(v))
	}
	return offs, nil
}

// withFd runs fn with f's descriptor, which Close cannot release
// meanwhile (a replica's values are written while the store may be
// closing: a descriptor closed and reused by another file would take
// them); ErrClosed once f is closed.
func withFd(f *os.File, fn func(fd int) error) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var ferr error
	if err := rc.Control(func(fd uintptr) { ferr = fn(int(fd)) }); err != nil {
		return ErrClosed
	}
	return ferr
}

// pwritevFile is pwritevAll on f's descriptor (withFd).
func pwritevFile(f *os.File, bufs [][]byte, off int64) (next int64, err error) {
	err = withFd(f, func(fd int) error {
		next, err = pwritevAll(fd, bufs, off)
		return err
	})
	return next, err
}

// pwritevAll writes every buffer at off, going on after short writes.
func pwritevAll(fd int, bufs [][]byte, off int64) (int64, error) {
	bufs = slices.Clone(bufs)
	for len(bufs) > 0 {
		n, err := unix.Pwritev(fd, bufs, off)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return off, err
		}
		if n == 0 {
			return off, io.ErrShortWrite
		}
		off += int64(n)
		for n > 0 && len(bufs) > 0 {
			if n < len(bufs[0]) {
				bufs[0] = bufs[0][n:]
				break
			}
			n -= len(bufs[0])
			bufs = bufs[1:]
		}
		for len(bufs) > 0 && len(bufs[0]) == 0 {
			bufs = bufs[1:]
		}
	}
	return off, nil
}

// sync makes what was appended to the current segment durable. Writer
// only; failpoint "segment:sync".
func (sg *segments) sync() error {
	if sg.curFile == nil || sg.end == sg.synced {
		return nil
	}
	if err := fail("segment:sync"); err != nil {
		return err
	}
	if !sg.noSync {
		if err := datasync(sg.curFile); err != nil {
			return fmt.Errorf("sync segment %s: %w", sg.path(sg.cur), err)
		}
	}
	sg.synced = sg.end
	return nil
}

// read returns the value at l, read into *buf (grown as needed). The
// caller holds readMu for reading. A value wholly past the end of its
// file (or in a segment that is gone) is errValueMissing, one partly past
// it is truncated.
func (sg *segments) read(l chunkLoc, buf *[]byte) ([]byte, error) {
	sg.mu.Lock()
	f := sg.files[l.seg]
	sg.mu.Unlock()
	if f == nil {
		return nil, errValueMissing
	}
	if l.size < chunkHeaderLen || l.size > maxValueSize || l.off > math.MaxInt64-maxValueSize {
		return nil, corruptf("chunk value of %d bytes at %d: index entry is corrupt", l.size, l.off)
	}
	b := slices.Grow((*buf)[:0], int(l.size))[:l.size]
	*buf = b
	n, err := f.ReadAt(b, int64(l.off))
	switch {
	case err == nil:
		return b, nil
	case errors.Is(err, io.EOF) && n == 0:
		return nil, errValueMissing
	case errors.Is(err, io.EOF):
		return nil, truncatedf("chunk value truncated (%d of %d bytes)", n, l.size)
	}
	return nil, corruptf("chunk value cannot be read: %v", err)
}

func sortExtents(xs []extent) {
	slices.SortFunc(xs, func(a, b extent) int {
		switch {
		case a.off < b.off:
			return -1
		case a.off > b.off:
			return 1
		}
		return 0
	})
}

// unreferenced returns the ranges of f below length between referenced
// values (live, in order) that still hold whole blocks of data: values a
// crash kept from being punched out. Ranges narrower than a block are
// left alone, so that blocks shared with live neighbours (zero, if their
// value was punched) are not looked at again on every Open.
func unreferenced(f *os.File, live []extent, length int64) ([]extent, error) {
	data, err := allocated(f, length)
	if err != nil {
		return nil, err
	}
	var out []extent
	at, j := int64(0), 0
	for _, x := range append(live[:len(live):len(live)], extent{length, length}) {
		if at < x.off {
			lo, hi := alignUp(at), x.off&^(holeBlock-1)
			for j < len(data) && data[j].end <= lo {
				j++
			}
			if lo < hi && j < len(data) && data[j].off < hi {
				out = append(out, extent{at, x.off})
			}
		}
		at = max(at, x.end)
	}
	return out, nil
}

func alignUp(n int64) int64 { return (n + holeBlock - 1) &^ (holeBlock - 1) }

// allocated lists the ranges of f below length that hold data.
func allocated(f *os.File, length int64) ([]extent, error) {
	fd := int(f.Fd())
	var out []extent
	for off := int64(0); off < length; {
		d, err := unix.Seek(fd, off, unix.SEEK_DATA)
		if errors.Is(err, unix.ENXIO) {
			break
		}
		if err != nil {
			return nil, err
		}
		if d >= length {
			break
		}
		h, err := unix.Seek(fd, d, unix.SEEK_HOLE)
		if err != nil {
			return nil, err
		}
		out = append(out, extent{d, min(h, length)})
		off = h
	}
	return out, nil
}

// maxValueSize bounds a stored value: a chunk's header and payload, which
// compression may make a little larger than the chunk.
const maxValueSize = chunkHeaderLen + 2*maxChunkSize
