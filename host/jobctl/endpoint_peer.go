package jobctl

import (
	"sync"
	"sync/atomic"

	"github.com/librahost/librahost/ckpt"
)

// peer is what an Endpoint keeps of one other host of the job: the
// messages it sent there that were not acked yet (sent again on every new
// stream), how far it took that host's messages, and the current stream.
type peer struct {
	id    ckpt.HostID
	name  string
	heard atomic.Int64 // unix ns of the last frame heard, 0 if none

	mu       sync.Mutex
	queue    []outMsg // not acked, by seq
	next     uint64   // seq of the next message
	taken    uint64   // the highest seq taken from the peer, in order
	instance uint64   // the peer's, from its last HELLO (0: none yet)
	cur      *conn
}

type outMsg struct {
	seq  uint64
	body []byte
}

func newPeer(id ckpt.HostID, name string) *peer {
	return &peer{id: id, name: name, next: 1}
}

func (p *peer) enqueue(body []byte) {
	p.mu.Lock()
	p.queue = append(p.queue, outMsg{seq: p.next, body: body})
	p.next++
	c := p.cur
	p.mu.Unlock()
	if c != nil {
		c.poke()
	}
}

// acked forgets the messages the peer has taken.
func (p *peer) acked(ack uint64) {
	p.mu.Lock()
	i := 0
	for i < len(p.queue) && p.queue[i].seq <= ack {
		i++
	}
	p.queue = p.queue[i:]
	p.mu.Unlock()
}

// install makes c the peer's stream, after a HELLO from instance. A new
// instance is a new process of the peer: what the old one was sent or
// sent here is of no use to it, so both numberings start again.
func (p *peer) install(c *conn, instance uint64) {
	p.mu.Lock()
	if p.instance != instance {
		if p.instance != 0 {
			p.queue, p.next = nil, 1
		}
		p.instance, p.taken = instance, 0
	}
	old := p.cur
	p.cur = c
	p.mu.Unlock()
	if old != nil {
		old.close()
	}
}

// uninstall forgets c if it is still the peer's stream.
func (p *peer) uninstall(c *conn) {
	p.mu.Lock()
	if p.cur == c {
		p.cur = nil
	}
	p.mu.Unlock()
}

func (p *peer) closeConn() {
	p.mu.Lock()
	c := p.cur
	p.mu.Unlock()
	if c != nil {
		c.close()
	}
}

// unsent returns the queued messages past seq sent, and the ack to send.
func (p *peer) unsent(sent uint64) ([]outMsg, uint64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	i := 0
	for i < len(p.queue) && p.queue[i].seq <= sent {
		i++
	}
	return p.queue[i:len(p.queue):len(p.queue)], p.taken
}

// take reports whether the peer's message seq is the next one to deliver
// (and counts it taken); false for a duplicate. ok is false for a gap,
// which a stream never has.
func (p *peer) take(seq uint64) (fresh, ok bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch {
	case seq <= p.taken:
		return false, true
	case seq == p.taken+1:
		p.taken = seq
		return true, true
	}
	return false, false
}
