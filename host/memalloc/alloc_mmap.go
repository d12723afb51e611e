package memalloc

import (
	"sync"
	"sync/atomic"

	"github.com/tetratelabs/wazero/experimental"
	"golang.org/x/sys/unix"
)

// MaxReserve is the most a single memory reserves: the whole 32-bit
// address space of a guest.
const MaxReserve = 4 << 30

// Allocator is an experimental.MemoryAllocator. The zero value is ready to
// use; one Allocator may serve any number of memories.
type Allocator struct {
	// Limit caps each reservation, in bytes; 0 means MaxReserve. A guest
	// then cannot grow its memory beyond Limit.
	Limit uint64
	// OnFallback, if set, is called when a reservation fails. The memory
	// then lives on the Go heap and moves when it grows.
	OnFallback func(error)
	// OnReserve, if set, is told of each reservation made, so that its
	// owner may read the memory while the guest runs (see Reservation).
	OnReserve func(*Reservation)
}

// Reservation is a memory that never moves: its whole mapping, and the
// guest-visible size, which changes only when the guest grows it.
type Reservation struct {
	buf  []byte
	size atomic.Uint64
}

// Bytes returns the guest-visible memory now: a prefix of the mapping,
// safe to read at any time, even while the guest grows it.
func (r *Reservation) Bytes() []byte { return r.buf[:r.size.Load()] }

// Mapping returns the whole reserved mapping, of which the guest sees a
// prefix.
func (r *Reservation) Mapping() []byte { return r.buf }

// Allocate implements experimental.MemoryAllocator. It reserves max bytes
// (capped at Limit) with MAP_NORESERVE: untouched pages cost nothing.
func (a Allocator) Allocate(cap, max uint64) experimental.LinearMemory {
	limit := a.Limit
	if limit == 0 || limit > MaxReserve {
		limit = MaxReserve
	}
	size := min(max, limit)
	if size == 0 {
		return &heapMemory{buf: []byte{}}
	}
	buf, err := unix.Mmap(-1, 0, int(size), unix.PROT_READ|unix.PROT_WRITE,
		unix.MAP_PRIVATE|unix.MAP_ANONYMOUS|unix.MAP_NORESERVE)
	if err != nil {
		if a.OnFallback != nil {
			a.OnFallback(&ReserveError{Bytes: size, Err: err})
		}
		return &heapMemory{buf: make([]byte, 0, min(cap, size)), max: size}
	}
	// Transparent huge pages: a restore writes the whole memory at once,
	// and 2 MiB pages take 512 times fewer faults than 4 KiB ones (and
	// fewer TLB misses while the guest runs). Advice only: ignore errors.
	adviseHuge(buf)
	m := &mmapMemory{buf: buf, res: &Reservation{buf: buf}}
	if a.OnReserve != nil {
		a.OnReserve(m.res)
	}
	return m
}

// mmapMemory is one reservation. Reallocate only changes the length of the
// slice it returns.
type mmapMemory struct {
	mu  sync.Mutex
	buf []byte // the whole reservation; nil once freed
	res *Reservation
}

// Reallocate implements experimental.LinearMemory.
func (m *mmapMemory) Reallocate(size uint64) []byte {
	m.mu.Lock()
	defer m.mu.Unlock()
	if size > uint64(len(m.buf)) {
		return nil
	}
	m.res.size.Store(size)
	return m.buf[:size:size]
}

// Free implements experimental.LinearMemory. It unmaps the reservation;
// calling it again does nothing.
func (m *mmapMemory) Free() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.buf != nil {
		_ = unix.Munmap(m.buf)
		m.buf = nil
	}
}

// heapMemory is the fallback when the reservation fails, and the memory of
// a module whose maximum is zero.
type heapMemory struct {
	buf []byte
	max uint64
}

func (m *heapMemory) Reallocate(size uint64) []byte {
	if size > m.max {
		return nil
	}
	if size > uint64(cap(m.buf)) {
		nb := make([]byte, size, max(size, min(2*uint64(cap(m.buf)), m.max)))
		copy(nb, m.buf)
		m.buf = nb
	}
	m.buf = m.buf[:size]
	return m.buf
}

func (m *heapMemory) Free() { m.buf = nil }
