package node

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"syscall"

	"github.com/quic-go/quic-go"

	"github.com/librahost/librahost/transport"
)

// HostError says why a host could not be reached or did not answer: it is
// down (no answer), it refused us or we refused it (the certificates of
// another cluster, an address its certificate does not name), or the
// exchange failed otherwise. It reads as one line: "host ADDR: STATE:
// reason".
type HostError struct {
	Addr   string
	Reason string
	kind   error // ErrHostDown, ErrRefused or ErrHostFailed
	err    error
}

func (e *HostError) Error() string {
	return fmt.Sprintf("host %s: %s: %s", e.Addr, e.State(), e.Reason)
}

// State is "down", "refused" or "failed".
func (e *HostError) State() string {
	switch e.kind {
	case ErrHostDown:
		return "down"
	case ErrRefused:
		return "refused"
	}
	return "failed"
}

func (e *HostError) Unwrap() []error { return []error{e.kind, e.err} }

// hostError describes err, met while talking to the host at addr.
func hostError(addr string, err error) *HostError {
	kind, reason := classify(err)
	return &HostError{Addr: addr, Reason: reason, kind: kind, err: err}
}

// TLS alerts (RFC 8446 §6) a host sends when it does not accept our
// certificate, and the one it sends when it does not speak our protocol.
const (
	alertBadCertificate     = 42
	alertUnsupportedCert    = 43
	alertCertificateRevoked = 44
	alertCertificateExpired = 45
	alertCertificateUnknown = 46
	alertUnknownCA          = 48
	alertAccessDenied       = 49
	alertCertRequired       = 116
	alertNoALPN             = 120
)

// classify turns quic-go's, crypto/tls's and crypto/x509's errors into a
// kind and a short reason that says what to check.
func classify(err error) (kind error, reason string) {
	var (
		idle      *quic.IdleTimeoutError
		hs        *quic.HandshakeTimeoutError
		dns       *net.DNSError
		unknownCA x509.UnknownAuthorityError
		name      x509.HostnameError
		invalid   x509.CertificateInvalidError
		te        *quic.TransportError
		app       *quic.ApplicationError
	)
	switch {
	case errors.As(err, &hs), errors.As(err, &idle), errors.Is(err, context.DeadlineExceeded):
		return ErrHostDown, "no answer (is `librahost host` running there, and is the address right?)"
	case errors.As(err, &dns):
		return ErrHostDown, fmt.Sprintf("cannot resolve %s", dns.Name)
	case errors.As(err, &te) && te.ErrorCode == quic.ConnectionRefused, errors.Is(err, syscall.ECONNREFUSED):
		// A host shutting down refuses new connections; a port nothing
		// listens on answers so too.
		return ErrHostDown, "it refuses connections (is `librahost host` running there?)"
	case errors.As(err, &unknownCA):
		return ErrRefused, "not this cluster's CA (its certificate is from another cluster: check --cluster and the address)"
	case errors.As(err, &name):
		return ErrRefused, fmt.Sprintf("its certificate does not name this address (%s): use an address it names, or issue it a certificate that names this one (librahost cluster add-host DIR NAME=ADDR)",
			strings.TrimPrefix(name.Error(), "x509: "))
	case errors.As(err, &invalid) && invalid.Reason == x509.Expired:
		return ErrRefused, "its certificate has expired or is not valid yet (check the clocks of both machines)"
	case errors.Is(err, transport.ErrBadCert):
		return ErrRefused, err.Error()
	case errors.As(err, &te) && te.ErrorCode >= 0x100 && te.ErrorCode < 0x200:
		alert := uint8(te.ErrorCode - 0x100)
		if !te.Remote {
			return ErrRefused, "TLS: " + tlsMessage(te)
		}
		switch alert {
		case alertCertificateExpired:
			return ErrRefused, "it does not accept our certificate as valid now (check the clocks of both machines)"
		case alertBadCertificate, alertUnsupportedCert, alertCertificateRevoked, alertCertificateUnknown,
			alertUnknownCA, alertAccessDenied, alertCertRequired:
			return ErrRefused, fmt.Sprintf("it does not trust this cluster's CA (it answered %q: is it a host of another cluster?)", tls.AlertError(alert).Error())
		case alertNoALPN:
			return ErrRefused, "it does not speak " + transport.ControlALPN + " (not a librahost host, or another version of librahost)"
		}
		return ErrRefused, "TLS: " + tlsMessage(te)
	case errors.As(err, &te) && te.ErrorCode == quic.InternalError && !te.Remote:
		// Our own checks of the peer's certificate (transport's
		// VerifyConnection) reach us as a message only.
		return ErrRefused, te.ErrorMessage
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return ErrHostFailed, "connection closed"
	case errors.As(err, &app):
		if app.Remote && app.ErrorMessage != "" {
			return ErrHostFailed, "it closed the connection: " + app.ErrorMessage
		}
		return ErrHostFailed, "the connection was closed"
	}
	return ErrHostFailed, err.Error()
}

// tlsMessage is a crypto error's message without quic-go's code prefix.
func tlsMessage(te *quic.TransportError) string {
	s := te.Error()
	if _, msg, ok := strings.Cut(s, "): "); ok {
		return msg
	}
	return s
}
