package jobctl

import (
	"context"
	"crypto/tls"
	"fmt"
	"log"
	"net"
	"sync"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/librahost/librahost/transport"
)

// ALPN is the TLS protocol of the control streams between a job's hosts
// on a host's socket.
const ALPN = "librahost-jobctl/1"

// HubConfig configures a host's Hub.
type HubConfig struct {
	// TLS is the host's cluster configuration (transport.LoadHostTLS or
	// LoadControlTLS); the Hub speaks ALPN with the same certificates and
	// checks. Required.
	TLS *tls.Config
	// Transport is the host's UDP socket, shared with its other
	// connections: the Hub dials from it, and its owner hands the Hub the
	// connections it accepts with ALPN (ServeConn). Required.
	Transport *quic.Transport
	// Logf gets one line per connection refused. Default log.Printf.
	Logf func(format string, args ...any)
}

// Hub is a host's end of the control streams of all its jobs: it dials
// for the Endpoints it opened and routes the streams other hosts open to
// the Endpoint of their job.
type Hub struct {
	cfg    HubConfig
	tls    *tls.Config
	mu     sync.Mutex
	eps    map[string]*Endpoint
	closed bool
	wg     sync.WaitGroup
}

// NewHub returns a host's Hub.
func NewHub(cfg HubConfig) (*Hub, error) {
	if cfg.TLS == nil || cfg.Transport == nil {
		return nil, fmt.Errorf("%w: a hub needs the host's TLS configuration and its UDP transport", ErrConfig)
	}
	tc, err := transport.WithALPN(cfg.TLS, ALPN)
	if err != nil {
		return nil, err
	}
	if cfg.Logf == nil {
		cfg.Logf = log.Printf
	}
	return &Hub{cfg: cfg, tls: tc, eps: map[string]*Endpoint{}}, nil
}

// TLSConfig is what the host's listener answers a client offering ALPN
// with (tls.Config.GetConfigForClient).
func (h *Hub) TLSConfig() *tls.Config { return h.tls }

// streamQUIC is the QUIC configuration of a control connection: the
// Endpoint's heartbeats keep it busy, the idle timeout only ends one
// whose peer vanished.
func streamQUIC() *quic.Config {
	return &quic.Config{
		HandshakeIdleTimeout: handshakeTimeout,
		MaxIdleTimeout:       10 * time.Second,
		MaxIncomingStreams:   1,
	}
}

// Open returns this host's Endpoint of a job (New, registered with the
// Hub): a participant dials cfg.CoordinatorAddr from the host's socket; the
// coordinator's host takes the streams other hosts open for the job.
func (h *Hub) Open(cfg Config) (*Endpoint, error) {
	if cfg.Self != cfg.Coordinator && cfg.Dial == nil {
		addr := cfg.CoordinatorAddr
		if addr == "" {
			return nil, fmt.Errorf("%w: no address of the coordinator's host", ErrConfig)
		}
		cfg.Dial = func(ctx context.Context) (string, Stream, error) { return h.dial(ctx, addr) }
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return nil, ErrClosed
	}
	if h.eps[cfg.Job] != nil {
		return nil, fmt.Errorf("%w: job %s has an endpoint on this host already", ErrConfig, cfg.Job)
	}
	e, err := New(cfg)
	if err != nil {
		return nil, err
	}
	h.eps[cfg.Job] = e
	e.onClose = func() {
		h.mu.Lock()
		if h.eps[cfg.Job] == e {
			delete(h.eps, cfg.Job)
		}
		h.mu.Unlock()
	}
	return e, nil
}

// dial opens a control connection and its stream to addr.
func (h *Hub) dial(ctx context.Context, addr string) (string, Stream, error) {
	ua, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		return "", nil, fmt.Errorf("dial %s: %v", addr, err)
	}
	tc := h.tls
	if host, _, err := net.SplitHostPort(addr); err == nil && host != "" {
		tc = tc.Clone()
		tc.ServerName = host
	}
	conn, err := h.cfg.Transport.Dial(ctx, ua, tc, streamQUIC())
	if err != nil {
		return "", nil, fmt.Errorf("dial %s: %v", addr, err)
	}
	peer, err := transport.PeerHostID(conn.ConnectionState().TLS)
	if err != nil {
		conn.CloseWithError(1, "")
		return "", nil, err
	}
	str, err := conn.OpenStreamSync(ctx)
	if err != nil {
		conn.CloseWithError(1, "")
		return "", nil, fmt.Errorf("dial %s: %v", addr, err)
	}
	return string(peer), quicStream{str, conn}, nil
}

// ServeConn takes a connection the host accepted with ALPN: its stream's
// HELLO names the job, whose Endpoint serves it.
func (h *Hub) ServeConn(conn *quic.Conn) {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		conn.CloseWithError(1, "host shutting down")
		return
	}
	h.wg.Add(1)
	h.mu.Unlock()
	go func() {
		defer h.wg.Done()
		h.serveConn(conn)
	}()
}

func (h *Hub) serveConn(conn *quic.Conn) {
	peer, err := transport.PeerHostID(conn.ConnectionState().TLS)
	if err != nil {
		conn.CloseWithError(1, "no host certificate")
		return
	}
	ctx, cancel := context.WithTimeout(conn.Context(), handshakeTimeout)
	str, err := conn.AcceptStream(ctx)
	if err != nil {
		cancel()
		conn.CloseWithError(1, "no stream")
		return
	}
	s := quicStream{str, conn}
	stop := context.AfterFunc(ctx, func() { s.Close() })
	f, err := readFrame(s)
	stopped := stop()
	cancel()
	if err == nil && f.kind != kindHello {
		err = fmt.Errorf("%w: %v first", ErrBadFrame, f)
	}
	if err != nil {
		if stopped {
			h.cfg.Logf("jobctl: stream from host %s: %v: refused", peer, err)
		}
		conn.CloseWithError(1, "bad hello")
		return
	}
	h.mu.Lock()
	e := h.eps[f.job]
	h.mu.Unlock()
	if e == nil {
		conn.CloseWithError(1, "no such job here")
		return
	}
	if err := e.accept(string(peer), s, f); err != nil {
		h.cfg.Logf("jobctl: %v: refused", err)
		conn.CloseWithError(1, "not in the job")
	}
}

// Close closes every Endpoint opened and waits for the streams to end. It
// leaves the Transport open.
func (h *Hub) Close() error {
	h.mu.Lock()
	h.closed = true
	eps := make([]*Endpoint, 0, len(h.eps))
	for _, e := range h.eps {
		eps = append(eps, e)
	}
	h.mu.Unlock()
	for _, e := range eps {
		e.Close()
	}
	h.wg.Wait()
	return nil
}

// quicStream is a control stream on a connection of its own: closing it
// closes the connection, at once both ways.
type quicStream struct {
	*quic.Stream
	conn *quic.Conn
}

func (s quicStream) Close() error { return s.conn.CloseWithError(0, "") }
