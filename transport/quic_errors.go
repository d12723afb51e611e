package transport

import (
	"errors"
	"fmt"
	"io"

	"github.com/quic-go/quic-go"
)

var (
	// ErrDuplicateLink: Dial made a connection to a peer that already has
	// one with this host, and the other connection is kept (see
	// QUICTransport). The kept link is, or will be, handed out by Dial or
	// Accept.
	ErrDuplicateLink = errors.New("transport: duplicate connection to peer; the other one is kept")
	// ErrTransportClosed: the QUICTransport was closed.
	ErrTransportClosed = errors.New("transport: quic transport closed")
)

// Application error codes a QUIC link closes its connection with.
const (
	quicCodeClosed     quic.ApplicationErrorCode = 0 // Close, or the transport shut down
	quicCodeProtocol   quic.ApplicationErrorCode = 1 // the peer broke the link protocol
	quicCodeDuplicate  quic.ApplicationErrorCode = 2 // another connection between the pair is kept
	quicCodeSuperseded quic.ApplicationErrorCode = 3 // a newer connection replaced this one
)

// LinkDownError is what a QUIC link's Send and Recv return once it is down,
// for whatever reason; it is both ErrLinkClosed and io.EOF.
type LinkDownError struct {
	Peer   HostID
	Reason string
}

func (e *LinkDownError) Error() string {
	return fmt.Sprintf("transport: link to %s down: %s", e.Peer, e.Reason)
}

func (e *LinkDownError) Unwrap() []error { return []error{ErrLinkClosed, io.EOF} }

// describeQUICError turns an error of quic-go into a short reason.
func describeQUICError(err error) string {
	var (
		app   *quic.ApplicationError
		idle  *quic.IdleTimeoutError
		reset *quic.StatelessResetError
		hs    *quic.HandshakeTimeoutError
	)
	switch {
	case errors.As(err, &app):
		who := "closed locally"
		if app.Remote {
			who = "closed by peer"
		}
		if app.ErrorMessage == "" {
			return fmt.Sprintf("%s (code %d)", who, app.ErrorCode)
		}
		return fmt.Sprintf("%s: %s", who, app.ErrorMessage)
	case errors.As(err, &idle):
		return "peer silent past the idle timeout"
	case errors.As(err, &reset):
		return "peer restarted (stateless reset)"
	case errors.As(err, &hs):
		return "handshake timed out"
	case errors.Is(err, io.EOF):
		return "peer closed the stream"
	}
	return err.Error()
}
