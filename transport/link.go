package transport

// A Link carries encoded frames to and from one peer host. It may lose,
// duplicate or reorder them when it fails or reconnects; the channel cores
// repair that.
//
// Buffers: Send does not keep buf after it returns, so the caller may reuse
// it; Recv returns a buffer the caller owns from then on (decoded frames
// share it). Send and Recv may be called from different goroutines, but
// each by one goroutine at a time. Close unblocks both.
type Link interface {
	// Send transmits one buffer holding one or more encoded frames. It may
	// block for flow control. An error means the link is down.
	Send(buf []byte) error
	// Recv returns the next buffer received from the peer (one or more
	// frames); io.EOF (or another error) when the link is down.
	Recv() ([]byte, error)
	Close() error
}
