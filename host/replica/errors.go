package replica

import "errors"

var (
	// ErrProtocol: the peer sent something that is not the replica
	// protocol, or not at its turn.
	ErrProtocol = errors.New("replica: protocol error")
	// ErrRefused: the replica host refused the checkpoint (its reason
	// follows).
	ErrRefused = errors.New("replica: refused")
)
