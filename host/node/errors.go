package node

import "errors"

var (
	// ErrProtocol: a peer sent a control message that does not parse or
	// does not belong where it came.
	ErrProtocol = errors.New("node: protocol error")
	// ErrJobFailed: a host gave up a job (its one-line reason follows).
	ErrJobFailed = errors.New("node: job failed")
	// ErrHostLost: a host's control connection broke while it ran ranks
	// of the job.
	ErrHostLost = errors.New("node: host lost")
	// ErrNoJob: a host has no job of the ID asked for.
	ErrNoJob = errors.New("node: no job")
	// ErrOutputGone: a host no longer keeps a job's output.
	ErrOutputGone = errors.New("node: output gone")
	// ErrNoIdentity: no certificate in the cluster directory to act as.
	ErrNoIdentity = errors.New("node: no host certificate to act as")
)

// Kinds of HostError.
var (
	// ErrHostDown: a host did not answer.
	ErrHostDown = errors.New("node: host down")
	// ErrRefused: a host refused our certificate, or we refused its.
	ErrRefused = errors.New("node: refused")
	// ErrHostFailed: a host answered, then the exchange failed.
	ErrHostFailed = errors.New("node: host failed")
)
