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
	// Carve a slab: one allocation of fresh memory instead of many.
	slab := make([]byte, slabBuffers*p.size)
	for i := 1; i < slabBuffers; i++ {
		p.free = append(p.free, slab[i*p.size:(i+1)*p.size:(i+1)*p.size])
	}
	p.mu.Unlock()
	return slab[:p.size:p.size]
}

// slabBuffers is how many buffers one allocation provides.
const slabBuffers = 32

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

// reserve makes sure n buffers are free, faulted in and kept.
func (p *bufPool) reserve(n int) {
	p.mu.Lock()
	if p.max < n {
		p.max = n
	}
	need := n - len(p.free)
	p.mu.Unlock()
	if need <= 0 {
		return
	}
	bufs := make([][]byte, 0, need)
	for range need {
		b := p.get()
		for i := 0; i < len(b); i += 4096 {
			b[i] = 0 // fault the page in
		}
		bufs = append(bufs, b)
	}
	for _, b := range bufs {
		p.put(b)
	}
}
