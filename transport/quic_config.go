package transport

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log"
	"slices"
	"strings"
	"time"

	"github.com/quic-go/quic-go"
)

// QUICConfig configures a QUICTransport. Zero fields take their defaults.
type QUICConfig struct {
	// Listen is the UDP address to listen on, which is also the source
	// address of dialed connections. Default "127.0.0.1:0".
	Listen string
	// TLS is the host's cluster configuration, from LoadHostTLS. Required.
	TLS *tls.Config
	// HostID is this host's ID. It must equal the host ID in TLS's
	// certificate; empty means that one.
	HostID string
	// MaxBuffer is the largest buffer a link sends or accepts; a peer that
	// announces a larger one is disconnected. Default 128 MiB.
	MaxBuffer int
	// KeepAlive is how often an idle connection sends a keep-alive.
	// Default 1 s.
	KeepAlive time.Duration
	// IdleTimeout: a connection that hears nothing from its peer for this
	// long is closed, and its link's Send and Recv fail. Default 5 s.
	IdleTimeout time.Duration
	// HandshakeTimeout bounds the TLS handshake and the link hello of a
	// new connection. Default 5 s.
	HandshakeTimeout time.Duration
	// AcceptQueue is how many accepted links may wait for Accept; when it
	// is full, new connections wait before they are answered. Default 16.
	AcceptQueue int
	// Logf receives one line for each peer that is disconnected for
	// breaking the protocol. Default log.Printf.
	Logf func(format string, args ...any)
	// Shared, if set, is a UDP transport of the host's that this one uses
	// instead of a socket of its own (Listen is then ignored): its owner
	// accepts the connections and hands this one those negotiated with
	// its ALPN (ServeConn). Close leaves Shared open.
	Shared *quic.Transport
	// ALPN is the TLS protocol the links are negotiated with; empty means
	// ALPN, which TLS must offer. Links of several jobs on one Shared
	// transport each use their own (JobALPN).
	ALPN string
}

// JobALPN is the TLS protocol of job's links on a host's shared socket.
func JobALPN(job string) string { return jobALPNPrefix + job }

// JobFromALPN returns the job of a JobALPN protocol.
func JobFromALPN(proto string) (string, bool) {
	job, ok := strings.CutPrefix(proto, jobALPNPrefix)
	return job, ok && job != ""
}

const jobALPNPrefix = "librahost-job/1 "

// TuneAcceptConfig sets the receive windows of c, the configuration of a
// host's shared listener, to what links use.
func TuneAcceptConfig(c *quic.Config) {
	c.InitialStreamReceiveWindow = quicRecvInitialWindow
	c.MaxStreamReceiveWindow = quicStreamWindow
	c.InitialConnectionReceiveWindow = quicConnInitialWindowSz
	c.MaxConnectionReceiveWindow = quicConnWindow
}

const (
	defaultQUICListen       = "127.0.0.1:0"
	defaultQUICMaxBuffer    = 128 << 20
	defaultQUICKeepAlive    = time.Second
	defaultQUICIdleTimeout  = 5 * time.Second
	defaultQUICHandshake    = 5 * time.Second
	defaultQUICAcceptQueue  = 16
	maxQUICMaxBuffer        = 1<<32 - 1
	quicStreamWindow        = 16 << 20
	quicConnWindow          = 24 << 20
	quicReadBufferSize      = 64 << 10
	quicSendCopyLimit       = 16 << 10
	quicRecvInitialWindow   = 2 << 20
	quicConnInitialWindowSz = 3 << 20
)

// withDefaults validates c and fills in its defaults.
func (c QUICConfig) withDefaults() (QUICConfig, HostID, error) {
	if c.TLS == nil || len(c.TLS.Certificates) == 0 {
		return c, "", errors.New("transport: quic: no TLS configuration with a host certificate")
	}
	if c.ALPN == "" && !slices.Contains(c.TLS.NextProtos, ALPN) {
		return c, "", fmt.Errorf("transport: quic: TLS configuration does not offer %s", ALPN)
	}
	if len(c.ALPN) > 255 {
		return c, "", fmt.Errorf("transport: quic: ALPN of %d bytes, at most 255", len(c.ALPN))
	}
	cert := c.TLS.Certificates[0]
	leaf := cert.Leaf
	if leaf == nil {
		if len(cert.Certificate) == 0 {
			return c, "", errors.New("transport: quic: TLS certificate is empty")
		}
		var err error
		if leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
			return c, "", fmt.Errorf("transport: quic: TLS certificate: %v", err)
		}
	}
	self, err := HostIDFromCert(leaf)
	if err != nil {
		return c, "", err
	}
	if c.HostID != "" && HostID(c.HostID) != self {
		return c, "", fmt.Errorf("transport: quic: host ID %q does not match the certificate's %q", c.HostID, self)
	}
	c.HostID = string(self)
	if c.Listen == "" {
		c.Listen = defaultQUICListen
	}
	switch {
	case c.MaxBuffer < 0 || c.MaxBuffer > maxQUICMaxBuffer:
		return c, "", fmt.Errorf("transport: quic: MaxBuffer %d out of range", c.MaxBuffer)
	case c.MaxBuffer == 0:
		c.MaxBuffer = defaultQUICMaxBuffer
	}
	if c.KeepAlive <= 0 {
		c.KeepAlive = defaultQUICKeepAlive
	}
	if c.IdleTimeout <= 0 {
		c.IdleTimeout = defaultQUICIdleTimeout
	}
	if c.HandshakeTimeout <= 0 {
		c.HandshakeTimeout = defaultQUICHandshake
	}
	if c.AcceptQueue <= 0 {
		c.AcceptQueue = defaultQUICAcceptQueue
	}
	if c.Logf == nil {
		c.Logf = log.Printf
	}
	return c, self, nil
}
