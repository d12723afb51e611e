package transport

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/quic-go/quic-go"
)

// QUICTransport carries Links between the hosts of a cluster over QUIC:
// one UDP socket, on which it both listens and dials, and one connection
// per pair of hosts. Every connection is mutually authenticated with the
// cluster's TLS certificates before any link data flows, and a link's peer
// is the host ID its certificate names.
//
// A link is one bidirectional stream of the connection carrying
// length-prefixed buffers. When two connections between the same pair
// exist at once (both hosts dialed, or one redialed), both ends keep the
// same one: the newer process's, else the later of one dialer's, else the
// one dialed by the lower host ID. The other's link goes down, and a Dial
// whose connection loses returns ErrDuplicateLink.
type QUICTransport struct {
	cfg      QUICConfig
	self     HostID
	instance uint64
	dialSeq  atomic.Uint64

	udp    *net.UDPConn
	tr     *quic.Transport
	ln     *quic.Listener
	tlsCfg *tls.Config

	ctx      context.Context
	cancel   context.CancelFunc
	accepted chan *quicLink
	wg       sync.WaitGroup

	mu     sync.Mutex
	links  map[HostID]*quicLink // the kept link to each peer
	closed bool
}

// ListenQUIC opens the UDP socket cfg.Listen and starts accepting peers.
func ListenQUIC(cfg QUICConfig) (*QUICTransport, error) {
	cfg, self, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	var ib [8]byte
	if _, err := rand.Read(ib[:]); err != nil {
		return nil, fmt.Errorf("transport: quic: %v", err)
	}
	t := &QUICTransport{
		cfg:      cfg,
		self:     self,
		instance: binary.BigEndian.Uint64(ib[:]),
		tlsCfg:   cfg.TLS.Clone(),
		accepted: make(chan *quicLink, cfg.AcceptQueue),
		links:    make(map[HostID]*quicLink),
	}
	if cfg.ALPN != "" {
		t.tlsCfg.NextProtos = []string{cfg.ALPN}
	}
	t.ctx, t.cancel = context.WithCancel(context.Background())
	if cfg.Shared != nil {
		t.tr = cfg.Shared
		return t, nil
	}
	ua, err := net.ResolveUDPAddr("udp", cfg.Listen)
	if err != nil {
		t.cancel()
		return nil, fmt.Errorf("transport: quic: listen %s: %v", cfg.Listen, err)
	}
	udp, err := net.ListenUDP("udp", ua)
	if err != nil {
		t.cancel()
		return nil, fmt.Errorf("transport: quic: listen %s: %v", cfg.Listen, err)
	}
	t.udp = udp
	t.tr = &quic.Transport{
		Conn:              udp,
		StatelessResetKey: StatelessResetKey(cfg.TLS.Certificates[0]),
		ConnContext:       t.watchHandshake,
	}
	t.ln, err = t.tr.Listen(t.tlsCfg, t.quicConfig(false))
	if err != nil {
		t.cancel()
		udp.Close()
		return nil, fmt.Errorf("transport: quic: listen %s: %v", cfg.Listen, err)
	}
	t.wg.Add(1)
	go t.acceptLoop()
	return t, nil
}

// StatelessResetKey derives the stateless reset key of a host's UDP
// transport from its private key, so that a restarted host resets its
// peers' connections to its old process at once instead of leaving them
// to the idle timeout.
func StatelessResetKey(cert tls.Certificate) *quic.StatelessResetKey {
	h := sha256.New()
	h.Write([]byte("librahost quic stateless reset key\x00"))
	if der, err := x509.MarshalPKCS8PrivateKey(cert.PrivateKey); err == nil {
		h.Write(der)
	} else {
		var b [32]byte
		rand.Read(b[:])
		h.Write(b[:])
	}
	var k quic.StatelessResetKey
	copy(k[:], h.Sum(nil))
	return &k
}

func (t *QUICTransport) quicConfig(dialer bool) *quic.Config {
	c := &quic.Config{
		HandshakeIdleTimeout:           t.cfg.HandshakeTimeout,
		MaxIdleTimeout:                 t.cfg.IdleTimeout,
		KeepAlivePeriod:                t.cfg.KeepAlive,
		InitialStreamReceiveWindow:     quicRecvInitialWindow,
		MaxStreamReceiveWindow:         quicStreamWindow,
		InitialConnectionReceiveWindow: quicConnInitialWindowSz,
		MaxConnectionReceiveWindow:     quicConnWindow,
		MaxIncomingStreams:             1,
		MaxIncomingUniStreams:          -1,
	}
	if dialer {
		// The acceptor never opens a stream.
		c.MaxIncomingStreams = -1
	}
	return c
}

// Addr returns the UDP address the transport listens on.
func (t *QUICTransport) Addr() net.Addr { return t.tr.Conn.LocalAddr() }

// ServeConn takes a connection that the owner of the Shared transport
// accepted with this transport's ALPN: it answers the link hello and
// queues the link for Accept.
func (t *QUICTransport) ServeConn(conn *quic.Conn) {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		conn.CloseWithError(quicCodeClosed, "host shutting down")
		return
	}
	t.wg.Add(1)
	t.mu.Unlock()
	go func() {
		defer t.wg.Done()
		t.serve(conn)
	}()
}

// HostID returns this host's ID.
func (t *QUICTransport) HostID() HostID { return t.self }

// Dial connects to the host listening at addr ("host:port") and returns
// its host ID, read from its verified certificate, and a link to it. If a
// connection between the pair is kept in favour of this one, Dial returns
// the peer's ID and an error wrapping ErrDuplicateLink. ctx bounds the
// connection set-up only.
func (t *QUICTransport) Dial(ctx context.Context, addr string) (HostID, Link, error) {
	ua, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		return "", nil, fmt.Errorf("transport: quic: dial %s: %v", addr, err)
	}
	tlsCfg := t.tlsCfg
	if tlsCfg.ServerName == "" {
		// The peer's certificate must be valid for the name dialed, not
		// only for the address it resolved to.
		if host, _, err := net.SplitHostPort(addr); err == nil && host != "" {
			tlsCfg = tlsCfg.Clone()
			tlsCfg.ServerName = host
		}
	}
	hctx, cancel := context.WithTimeout(ctx, t.cfg.HandshakeTimeout)
	defer cancel()
	conn, err := t.tr.Dial(hctx, ua, tlsCfg, t.quicConfig(true))
	if err != nil {
		if t.isClosed() {
			return "", nil, ErrTransportClosed
		}
		return "", nil, fmt.Errorf("transport: quic: dial %s: %v", addr, err)
	}
	peer, l, err := t.dialHello(hctx, conn)
	if err != nil {
		conn.CloseWithError(quicCodeClosed, "")
		if errors.Is(err, ErrDuplicateLink) {
			return peer, nil, err
		}
		return peer, nil, fmt.Errorf("transport: quic: dial %s: %w", addr, err)
	}
	return peer, l, nil
}

func (t *QUICTransport) dialHello(ctx context.Context, conn *quic.Conn) (HostID, *quicLink, error) {
	peer, err := PeerHostID(conn.ConnectionState().TLS)
	if err != nil {
		return "", nil, err
	}
	if peer == t.self {
		return peer, nil, fmt.Errorf("peer is this host (%s)", peer)
	}
	str, err := conn.OpenStreamSync(ctx)
	if err != nil {
		return peer, nil, errors.New(describeQUICError(err))
	}
	seq := t.dialSeq.Add(1)
	if _, err := str.Write(quicHello{kind: helloDial, instance: t.instance, seq: seq}.append(nil)); err != nil {
		return peer, nil, errors.New(describeQUICError(err))
	}
	// The reply proves the peer verified this host's certificate and
	// took the connection.
	stop := context.AfterFunc(ctx, func() { str.SetReadDeadline(time.Unix(1, 0)) })
	br := newBufferReader(str, quicReadBufferSize, t.cfg.MaxBuffer)
	var rb [quicHelloLen]byte
	_, err = io.ReadFull(br.r, rb[:])
	if !stop() {
		return peer, nil, fmt.Errorf("no answer from %s: %w", peer, context.Cause(ctx))
	}
	if err != nil {
		var app *quic.ApplicationError
		if errors.As(err, &app) && app.Remote && (app.ErrorCode == quicCodeDuplicate || app.ErrorCode == quicCodeSuperseded) {
			// Kept, then replaced at once by the peer's own dial.
			return peer, nil, fmt.Errorf("%w (%s)", ErrDuplicateLink, peer)
		}
		return peer, nil, fmt.Errorf("no answer from %s: %s", peer, describeQUICError(err))
	}
	h, err := decodeHello(rb[:])
	if err == nil && h.kind != helloAccept {
		err = &protocolError{"answered a dial with a dial"}
	}
	if err != nil {
		t.cfg.Logf("transport: quic: peer %s (%s) disconnected: %v", peer, conn.RemoteAddr(), err)
		conn.CloseWithError(quicCodeProtocol, "bad hello")
		return peer, nil, err
	}
	l := newQUICLink(t, peer, connKey{dialer: t.self, instance: h.instance, seq: seq}, conn, str, br)
	if !t.register(l) {
		if t.isClosed() {
			return peer, nil, ErrTransportClosed
		}
		conn.CloseWithError(quicCodeDuplicate, "duplicate connection")
		return peer, nil, fmt.Errorf("%w (%s)", ErrDuplicateLink, peer)
	}
	return peer, l, nil
}

// Accept returns the next link a peer dialed.
func (t *QUICTransport) Accept(ctx context.Context) (HostID, Link, error) {
	select {
	case l := <-t.accepted:
		return l.peer, l, nil
	case <-ctx.Done():
		return "", nil, ctx.Err()
	case <-t.ctx.Done():
		return "", nil, ErrTransportClosed
	}
}

func (t *QUICTransport) acceptLoop() {
	defer t.wg.Done()
	for {
		conn, err := t.ln.Accept(t.ctx)
		if err != nil {
			return
		}
		t.wg.Add(1)
		go func() {
			defer t.wg.Done()
			t.serve(conn)
		}()
	}
}

// serve answers the hello of a connection a peer dialed and queues its link.
func (t *QUICTransport) serve(conn *quic.Conn) {
	if w, ok := conn.Context().Value(handshakeWatchKey{}).(*handshakeWatch); ok {
		w.served.Store(true)
	}
	peer, err := PeerHostID(conn.ConnectionState().TLS)
	if err != nil {
		t.refuse(conn, "?", err.Error())
		return
	}
	if peer == t.self {
		t.refuse(conn, peer, "peer presents this host's own certificate")
		return
	}
	ctx, cancel := context.WithTimeout(t.ctx, t.cfg.HandshakeTimeout)
	defer cancel()
	str, err := conn.AcceptStream(ctx)
	if err != nil {
		if t.ctx.Err() == nil {
			t.refuse(conn, peer, "no link stream: "+describeQUICError(err))
		}
		return
	}
	str.SetReadDeadline(time.Now().Add(t.cfg.HandshakeTimeout))
	br := newBufferReader(str, quicReadBufferSize, t.cfg.MaxBuffer)
	var hb [quicHelloLen]byte
	if _, err := io.ReadFull(br.r, hb[:]); err != nil {
		t.refuse(conn, peer, "no hello: "+describeQUICError(err))
		return
	}
	str.SetReadDeadline(time.Time{})
	h, err := decodeHello(hb[:])
	if err == nil && h.kind != helloDial {
		err = &protocolError{"opened with an answer"}
	}
	if err != nil {
		t.refuse(conn, peer, err.(*protocolError).msg)
		return
	}
	l := newQUICLink(t, peer, connKey{dialer: peer, instance: h.instance, seq: h.seq}, conn, str, br)
	if !t.register(l) {
		conn.CloseWithError(quicCodeDuplicate, "duplicate connection")
		return
	}
	if _, err := str.Write(quicHello{kind: helloAccept, instance: t.instance, seq: h.seq}.append(nil)); err != nil {
		l.fail(quicCodeClosed, describeQUICError(err))
		return
	}
	select {
	case t.accepted <- l:
	case <-t.ctx.Done():
		l.fail(quicCodeClosed, "host shutting down")
	}
}

// handshakeWatch is attached to the context of every incoming connection,
// so that one that ends before serve sees it (a refused certificate, a
// handshake that timed out) is logged.
type handshakeWatch struct{ served atomic.Bool }

type handshakeWatchKey struct{}

func (t *QUICTransport) watchHandshake(ctx context.Context, ci *quic.ClientInfo) (context.Context, error) {
	w := &handshakeWatch{}
	addr := ci.RemoteAddr
	context.AfterFunc(ctx, func() {
		if !w.served.Load() && t.ctx.Err() == nil {
			t.cfg.Logf("transport: quic: refused a connection from %s: %s", addr, describeQUICError(context.Cause(ctx)))
		}
	})
	return context.WithValue(ctx, handshakeWatchKey{}, w), nil
}

func (t *QUICTransport) refuse(conn *quic.Conn, peer HostID, why string) {
	t.cfg.Logf("transport: quic: peer %s (%s) disconnected: %s", peer, conn.RemoteAddr(), why)
	conn.CloseWithError(quicCodeProtocol, why)
}

// register makes l the kept link to its peer unless the link already kept
// supersedes it, and closes the one it replaces.
func (t *QUICTransport) register(l *quicLink) bool {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return false
	}
	old := t.links[l.peer]
	if old != nil && !old.isDown() && !supersedes(l.key, old.key) {
		t.mu.Unlock()
		return false
	}
	t.links[l.peer] = l
	t.mu.Unlock()
	if old != nil {
		old.fail(quicCodeSuperseded, "replaced by a newer connection")
	}
	return true
}

func (t *QUICTransport) unregister(l *quicLink) {
	t.mu.Lock()
	if t.links[l.peer] == l {
		delete(t.links, l.peer)
	}
	t.mu.Unlock()
}

func (t *QUICTransport) isClosed() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.closed
}

// Close closes every link and the socket. Links not yet accepted are
// closed too.
func (t *QUICTransport) Close() error {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return nil
	}
	t.closed = true
	links := make([]*quicLink, 0, len(t.links))
	for _, l := range t.links {
		links = append(links, l)
	}
	t.mu.Unlock()
	t.cancel()
	for _, l := range links {
		l.fail(quicCodeClosed, "host shutting down")
	}
	if t.ln != nil {
		t.ln.Close()
	}
	t.wg.Wait()
	for {
		select {
		case l := <-t.accepted:
			l.fail(quicCodeClosed, "host shutting down")
			continue
		default:
		}
		break
	}
	if t.udp == nil { // Shared: its owner closes it
		return nil
	}
	err := t.tr.Close()
	if e := t.udp.Close(); err == nil {
		err = e
	}
	return err
}
