package progress

import "io"

// piece bounds one write through Count, so that the bar moves during a
// large one.
const piece = 256 << 10

// Count returns a writer to w that adds to the bar what it writes.
func (b *Bar) Count(w io.Writer) io.Writer { return &counting{b, w} }

type counting struct {
	b *Bar
	w io.Writer
}

func (c *counting) Write(p []byte) (int, error) {
	n := 0
	for len(p) > 0 {
		k := min(len(p), piece)
		m, err := c.w.Write(p[:k])
		n += m
		c.b.Add(int64(m))
		if err != nil {
			return n, err
		}
		p = p[k:]
	}
	return n, nil
}

// Above returns a writer to w for lines printed while the bar may be
// drawn: each write first erases the bar's line, and the bar is drawn
// again below at its next update.
func (b *Bar) Above(w io.Writer) io.Writer { return &above{b, w} }

type above struct {
	b *Bar
	w io.Writer
}

func (a *above) Write(p []byte) (int, error) {
	if a.b == nil {
		return a.w.Write(p)
	}
	a.b.mu.Lock()
	defer a.b.mu.Unlock()
	if a.b.gate.open && !a.b.ended {
		a.b.pb.Clear()
	}
	return a.w.Write(p)
}
