package transport

import "sync/atomic"

// Counters are an Endpoint's totals since it started, for metrics: the
// DATA frames and link bytes that crossed to and from peer hosts (local
// channels are not counted).
type Counters struct {
	Sent       uint64 // DATA frames of new messages for peer hosts
	Resent     uint64 // DATA frames sent again (retransmit timeouts, reconnects)
	Acked      uint64 // messages to peer hosts that their receivers acked
	Received   uint64 // DATA frames received from peer hosts
	Duplicates uint64 // received ones already delivered: dropped
	BytesSent  uint64 // link buffers sent
	BytesRecv  uint64 // link buffers received
	// StableAcks counts ACK frames sent on their own to carry stability,
	// for a channel quiet since a commit; stability otherwise rides on
	// the acks that DATA frames cause.
	StableAcks uint64
	// StaleLinks counts links refused because the peer was of an older
	// incarnation of the job.
	StaleLinks uint64
	// Discarded counts messages delivered to ranks whose programs had
	// ended (Ended), dropped.
	Discarded uint64
}

// counters are updated by the loop (once per batch) and the links'
// goroutines (once per buffer), each on a cache line of its own.
type counters struct {
	sent, resent, acked, received, duplicates atomic.Uint64 // loop
	stableAcks, discarded                     atomic.Uint64 // loop
	_                                         [8]byte
	bytesSent                                 atomic.Uint64 // link writers
	_                                         [56]byte
	bytesRecv                                 atomic.Uint64 // link readers
	staleLinks                                atomic.Uint64 // link readers, rarely
}

// Counters returns the Endpoint's totals so far. It may be called at any
// time, after Close too.
func (e *Endpoint) Counters() Counters {
	c := &e.ctr
	return Counters{
		Sent: c.sent.Load(), Resent: c.resent.Load(), Acked: c.acked.Load(), Received: c.received.Load(),
		Duplicates: c.duplicates.Load(), BytesSent: c.bytesSent.Load(), BytesRecv: c.bytesRecv.Load(),
		StableAcks: c.stableAcks.Load(), StaleLinks: c.staleLinks.Load(),
		Discarded: c.discarded.Load(),
	}
}
