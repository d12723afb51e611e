package ckpt

import "sync"

// initialMmapSize is mapped up front so that commits rarely remap the file
// (a remap waits for every reader).
const initialMmapSize = 1 << 30

// bufPool keeps chunk-sized buffers between captures, up to a byte budget,
// so that copying memory during the pause touches warm pages.
type bufPool struct {
	size int
	max  int

	mu   sync.Mutex
	free [][]byte
}

func newBufPool(size, maxBytes int) *bufPool {
	n := 0
	if maxBytes > 0 {
		n = maxBytes / size
	}
	return &bufPool{size: size, max: n}
}

func (p *bufPool) get() []byte {
	p.mu.Lock()
	if n := len(p.free); n > 0 {
		b := p.free[n-1]
		p.free[n-1] = nil
		p.free = p.free[:n-1]
		p.mu.Unlock()
		return b[:p.size]
	}
	p.mu.Unlock()
	return make([]byte, p.size)
}

func (p *bufPool) put(b []byte) {
	if cap(b) < p.size {
		return
	}
	p.mu.Lock()
	if len(p.free) < p.max {
		p.free = append(p.free, b[:p.size])
	}
	p.mu.Unlock()
}
