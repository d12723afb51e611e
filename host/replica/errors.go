package replica

import "errors"

var (
	// ErrProtocol: the peer sent something that is not the replica
	// protocol, or not at its turn.
	ErrProtocol = errors.New("replica: protocol error")
	// ErrRefused: the replica host refused the checkpoint (its reason
	// follows).
	ErrRefused = errors.New("replica: refused")
	// ErrAgain: the replica host refused the checkpoint only because a
	// chunk it said it held went from its store before its commit (a
	// concurrent drop of older epochs, ckpt.ErrChunkGone). Sent again,
	// the replica host asks for that chunk too. Such a refusal is also
	// ErrRefused.
	ErrAgain = errors.New("replica: a chunk the replica host held went meanwhile")
)

// refusal is the replica host's RESULT when it refused.
type refusal struct {
	why   string
	again bool // ErrAgain
}

func (r *refusal) Error() string { return ErrRefused.Error() + ": " + r.why }

func (r *refusal) Is(target error) bool {
	return target == ErrRefused || r.again && target == ErrAgain
}
