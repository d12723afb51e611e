package transport

import "sync"

// inbox holds one local rank's delivered messages in arrival order.
type inbox struct {
	mu     sync.Mutex
	q      []Message
	head   int
	notify chan struct{}
}

func (in *inbox) init() { in.notify = make(chan struct{}, 1) }

func (in *inbox) push(ms []Message) {
	in.mu.Lock()
	in.q = append(in.q, ms...)
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
