package transport

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"

	"github.com/quic-go/quic-go"
)

// quicLink is a Link over one QUIC connection and its one bidirectional
// stream. Send and Recv may be called from different goroutines; calls of
// each are serialised.
type quicLink struct {
	t    *QUICTransport
	peer HostID
	key  connKey
	conn *quic.Conn
	str  *quic.Stream
	addr net.Addr

	sendMu sync.Mutex
	wbuf   []byte

	recvMu sync.Mutex
	br     *bufferReader

	downOnce sync.Once
	downErr  error // set once under downOnce; read after <-down
	down     chan struct{}
}

// connKey tells which of two connections between the same pair is kept.
type connKey struct {
	dialer   HostID // host that dialed the connection
	instance uint64 // the peer's transport instance
	seq      uint64 // the dialer's dial sequence number
}

// supersedes reports whether connection a is kept in favour of b, both
// between this host and the same peer. Both ends reach the same answer:
//   - a connection from a new instance of the peer (a restarted process)
//     replaces the old instance's;
//   - of two connections dialed by the same host, the later one;
//   - of two dialed from both ends at once, the one dialed by the lower
//     host ID.
func supersedes(a, b connKey) bool {
	switch {
	case a.instance != b.instance:
		return true
	case a.dialer == b.dialer:
		return a.seq > b.seq
	default:
		return a.dialer < b.dialer
	}
}

func newQUICLink(t *QUICTransport, peer HostID, key connKey, conn *quic.Conn, str *quic.Stream, br *bufferReader) *quicLink {
	return &quicLink{
		t:    t,
		peer: peer,
		key:  key,
		conn: conn,
		str:  str,
		addr: conn.RemoteAddr(),
		br:   br,
		down: make(chan struct{}),
	}
}

// Send writes one buffer. It blocks while QUIC flow control holds it back
// and fails once the link is down.
func (l *quicLink) Send(buf []byte) error {
	if len(buf) == 0 {
		return nil
	}
	if len(buf) > l.t.cfg.MaxBuffer {
		return fmt.Errorf("%w: buffer of %d bytes for %s exceeds the maximum of %d", ErrTooLarge, len(buf), l.peer, l.t.cfg.MaxBuffer)
	}
	l.sendMu.Lock()
	defer l.sendMu.Unlock()
	if err := l.downError(); err != nil {
		return err
	}
	var err error
	if len(buf) <= quicSendCopyLimit {
		// One write for header and bytes: small buffers go out with no
		// extra wake-up of the connection's goroutine.
		l.wbuf = append(appendBufferHeader(l.wbuf[:0], len(buf)), buf...)
		_, err = l.str.Write(l.wbuf)
	} else {
		l.wbuf = appendBufferHeader(l.wbuf[:0], len(buf))
		if _, err = l.str.Write(l.wbuf); err == nil {
			_, err = l.str.Write(buf)
		}
	}
	if err != nil {
		return l.fail(quicCodeClosed, describeQUICError(err))
	}
	return nil
}

// Recv returns the next buffer from the peer. A peer that breaks the
// framing is disconnected and logged.
func (l *quicLink) Recv() ([]byte, error) {
	l.recvMu.Lock()
	defer l.recvMu.Unlock()
	buf, err := l.br.next()
	if err == nil {
		return buf, nil
	}
	var pe *protocolError
	if errors.As(err, &pe) {
		return nil, l.protocolViolation(pe)
	}
	if e := l.downError(); e != nil {
		return nil, e
	}
	return nil, l.fail(quicCodeClosed, describeQUICError(err))
}

// Close closes the connection. Send and Recv then fail.
func (l *quicLink) Close() error {
	l.fail(quicCodeClosed, "closed")
	return nil
}

// Peer returns the peer's host ID.
func (l *quicLink) Peer() HostID { return l.peer }

// RemoteAddr returns the peer's UDP address.
func (l *quicLink) RemoteAddr() net.Addr { return l.addr }

func (l *quicLink) String() string {
	return fmt.Sprintf("quic link to %s (%s)", l.peer, l.addr)
}

func (l *quicLink) protocolViolation(pe *protocolError) error {
	l.t.cfg.Logf("transport: quic: peer %s (%s) disconnected: %s", l.peer, l.addr, pe.msg)
	return l.fail(quicCodeProtocol, pe.msg)
}

// fail marks the link down for reason, if it is not down already, closes
// its connection with code and reason, and returns the link's error.
func (l *quicLink) fail(code quic.ApplicationErrorCode, reason string) error {
	l.downOnce.Do(func() {
		l.downErr = &LinkDownError{Peer: l.peer, Reason: reason}
		close(l.down)
		l.t.unregister(l)
		// Wakes a read or write still waiting in the other direction.
		l.conn.CloseWithError(code, reason)
	})
	return l.downErr
}

// downError returns the link's error if it is down.
func (l *quicLink) downError() error {
	select {
	case <-l.down:
		return l.downErr
	default:
	}
	if err := context.Cause(l.conn.Context()); err != nil && l.conn.Context().Err() != nil {
		return l.fail(quicCodeClosed, describeQUICError(err))
	}
	return nil
}

// isDown reports whether the link or its connection is gone.
func (l *quicLink) isDown() bool {
	select {
	case <-l.down:
		return true
	case <-l.conn.Context().Done():
		return true
	default:
		return false
	}
}
