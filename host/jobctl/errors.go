package jobctl

import "errors"

// Sentinel errors. Errors of this package wrap one of them, so callers test
// with errors.Is; messages are one line prefixed "jobctl: ".
var (
	// ErrBadFrame: bytes on a control stream that are not a frame of this
	// protocol (bad length, version, kind or field); the stream is closed.
	ErrBadFrame = errors.New("jobctl: bad frame")
	// ErrClosed: the Endpoint (or its Hub) was closed.
	ErrClosed = errors.New("jobctl: closed")
	// ErrNotInJob: a host that is not among the job's, or one this host
	// has no stream to (a participant talks to the coordinator only).
	ErrNotInJob = errors.New("jobctl: host not reachable in this job")
	// ErrConfig: a Config or HubConfig that cannot work.
	ErrConfig = errors.New("jobctl: bad configuration")
)
