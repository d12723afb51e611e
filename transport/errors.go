package transport

import "errors"

// Sentinel errors. Errors returned by this package wrap one of them, so
// callers test with errors.Is; messages are one line prefixed "transport: ".
var (
	// ErrMalformed: bytes that are not a valid frame (bad magic, field out
	// of range, length past the end, trailing bytes in a fixed frame).
	ErrMalformed = errors.New("transport: malformed frame")
	// ErrTruncated: the buffer ends inside a frame.
	ErrTruncated = errors.New("transport: truncated frame")
	// ErrVersion: a frame of a format version this build does not speak.
	ErrVersion = errors.New("transport: unsupported frame version")
	// ErrChecksum: a frame's checksum does not match its bytes.
	ErrChecksum = errors.New("transport: frame checksum mismatch")
	// ErrUnknownType: a well-formed frame of a type this build does not
	// know. DecodeFrame still reports its length, so a reader may skip it.
	ErrUnknownType = errors.New("transport: unknown frame type")
	// ErrTooLarge: a frame or payload above MaxPayload.
	ErrTooLarge = errors.New("transport: frame too large")
	// ErrLinkClosed: the link was closed or its peer went away.
	ErrLinkClosed = errors.New("transport: link closed")
	// ErrClosed: the Endpoint was closed.
	ErrClosed = errors.New("transport: endpoint closed")
	// ErrLogTrimmed: a rewind asked for messages already dropped from the
	// sender log as stable.
	ErrLogTrimmed = errors.New("transport: sender log no longer holds the message")
	// ErrBadState: a channel state that cannot be restored.
	ErrBadState = errors.New("transport: invalid channel state")
	// ErrFaultSpec: a fault specification that cannot be parsed.
	ErrFaultSpec = errors.New("transport: invalid fault spec")
	// ErrHandshake: a peer whose HELLO is missing or does not match.
	ErrHandshake = errors.New("transport: handshake refused")
	// ErrLogFull: a send that would take the sender logs past
	// EndpointConfig.MaxLogBytes with no checkpoint coming to shorten them.
	ErrLogFull = errors.New("transport: sender logs full")
	// ErrStale: a peer whose HELLO names an older incarnation of the job
	// than this Endpoint's: a host declared dead that came back.
	ErrStale = errors.New("transport: peer of a stale incarnation refused")
)
