package libra

import (
	"errors"
	"fmt"
)

// Message is a message received by Recv.
type Message struct {
	Src  int    // the sender's rank
	Tag  int    // the tag it was sent with
	Data []byte // the payload, owned by the caller
}

// Errors of the message calls.
var (
	ErrRank = errors.New("libra: no such rank")
	ErrTag  = errors.New("libra: tags must be ≥ 0")
)

// Tags below zero are reserved: Any (-1) in Recv, and the collectives'
// own messages below it.
const (
	tagBarrier   = -2
	tagBcast     = -3
	tagReduce    = -4
	tagAllreduce = -5
)

// Send sends data to rank dst with tag (≥ 0). It copies data and returns
// at once; it blocks only while the channel to dst holds more unacked
// data than its window (64 MiB by default). Messages between two ranks
// arrive in the order they were sent, exactly once, across failures and
// restores.
func Send(dst, tag int, data []byte) error {
	if tag < 0 {
		return ErrTag
	}
	return send(dst, tag, data)
}

// Recv waits for a message from rank src (or Any) with tag (or Any) and
// returns it. A program waiting in Recv is checkpointed for free.
func Recv(src, tag int) (Message, error) {
	if tag < Any {
		return Message{}, ErrTag
	}
	return recv(src, tag)
}

func checkRank(r int) error {
	if r < 0 || r >= Size() {
		return fmt.Errorf("%w: %d (the job has %d)", ErrRank, r, Size())
	}
	return nil
}
