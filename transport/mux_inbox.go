package transport

import (
	"slices"
	"sync"
	"sync/atomic"
)

// inbox holds one local rank's delivered messages in arrival order.
type inbox struct {
	mu     sync.Mutex
	q      []Message
	head   int
	notify chan struct{}
	// got is, by source rank, the Seq of the last message pushed: how far
	// each channel to the rank is delivered, as the inbox shows it (its
	// Receiver may be ahead while a push is under way). A cut reads it
	// with the inbox's messages, without the loop (mux_cut.go).
	got []uint64
}

func (in *inbox) init() { in.notify = make(chan struct{}, 1) }

func (in *inbox) push(ms []Message) {
	in.mu.Lock()
	in.q = append(in.q, ms...)
	for _, m := range ms {
		in.setGot(m.Src, m.Seq)
	}
	in.mu.Unlock()
	select {
	case in.notify <- struct{}{}:
	default:
	}
}

func (in *inbox) take(src, tag int32) (Message, bool) {
	in.mu.Lock()
	defer in.mu.Unlock()
	for i := in.head; i < len(in.q); i++ {
		m := in.q[i]
		if (src != Any && m.Src != uint32(src)) || (tag == Any && m.Tag < 0) || (tag != Any && m.Tag != tag) {
			continue
		}
		if i == in.head {
			in.q[i] = Message{}
			in.head++
		} else {
			copy(in.q[i:], in.q[i+1:])
			in.q[len(in.q)-1] = Message{}
			in.q = in.q[:len(in.q)-1]
		}
		if in.head == len(in.q) {
			in.q, in.head = in.q[:0], 0
		} else if in.head > 1024 && in.head > len(in.q)/2 {
			n := copy(in.q, in.q[in.head:])
			clear(in.q[n:])
			in.q, in.head = in.q[:n], 0
		}
		return m, true
	}
	return Message{}, false
}

// setGot records that channel src→ is delivered up to seq. The caller
// holds in.mu.
func (in *inbox) setGot(src uint32, seq uint64) {
	if int(src) >= len(in.got) {
		in.got = append(in.got, make([]uint64, int(src)+1-len(in.got))...)
	}
	in.got[src] = seq
}

// mark returns the messages waiting and how far each channel to the rank
// is delivered, at one instant, and sets the rank's epoch (*at) to epoch
// at that same instant: a message pushed after it finds the rank in
// epoch, so that an ack read after the push does not claim it for the
// cut of epoch (Frame.Cut).
func (in *inbox) mark(at *atomic.Uint64, epoch uint64) ([]Message, []uint64) {
	in.mu.Lock()
	defer in.mu.Unlock()
	at.Store(epoch)
	return slices.Clone(in.q[in.head:]), slices.Clone(in.got)
}

// Len returns how many messages wait.
func (in *inbox) Len() int {
	in.mu.Lock()
	defer in.mu.Unlock()
	return len(in.q) - in.head
}

// discard drops every waiting message and returns how many there were.
func (in *inbox) discard() int {
	in.mu.Lock()
	defer in.mu.Unlock()
	n := len(in.q) - in.head
	clear(in.q)
	in.q, in.head = in.q[:0], 0
	return n
}
