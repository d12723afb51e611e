package transport

import (
	"bytes"
	"context"
	"errors"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/quic-go/quic-go"
)

// sharedHost is a host's one UDP socket, whose accept loop hands each
// connection to the job transport of its ALPN, as a host daemon does.
type sharedHost struct {
	tr   *quic.Transport
	mu   sync.Mutex
	jobs map[string]*QUICTransport
}

func newSharedHost(t *testing.T, c *quicCluster, host string) *sharedHost {
	t.Helper()
	udp, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	base := c.tls(t, host)
	h := &sharedHost{tr: &quic.Transport{Conn: udp, StatelessResetKey: StatelessResetKey(base.Certificates[0])}, jobs: map[string]*QUICTransport{}}
	lc := SharedListenTLS(nil, base, func(job string) bool { return h.job(job) != nil })
	qc := &quic.Config{MaxIncomingStreams: 1}
	TuneAcceptConfig(qc)
	ln, err := h.tr.Listen(lc, qc)
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for {
			conn, err := ln.Accept(context.Background())
			if err != nil {
				return
			}
			job, _ := JobFromALPN(conn.ConnectionState().TLS.NegotiatedProtocol)
			if qt := h.job(job); qt != nil {
				qt.ServeConn(conn)
			} else {
				conn.CloseWithError(1, "no such job")
			}
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		h.tr.Close()
		udp.Close()
	})
	return h
}

func (h *sharedHost) job(id string) *QUICTransport {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.jobs[id]
}

func (h *sharedHost) start(t *testing.T, c *quicCluster, host, job string) *QUICTransport {
	t.Helper()
	qt, err := ListenQUIC(QUICConfig{TLS: c.tls(t, host), Shared: h.tr, ALPN: JobALPN(job)})
	if err != nil {
		t.Fatal(err)
	}
	h.mu.Lock()
	h.jobs[job] = qt
	h.mu.Unlock()
	t.Cleanup(func() { qt.Close() })
	return qt
}

// Two jobs between the same two hosts share each host's one UDP socket:
// each job's links reach only that job, and a job the host does not run
// is refused.
func TestQUICSharedSocket(t *testing.T) {
	c := newQUICCluster(t, "h0", "h1")
	a, b := newSharedHost(t, c, "h0"), newSharedHost(t, c, "h1")
	jobs := []string{"job-1", "job-2"}
	for _, job := range jobs {
		qa, qb := a.start(t, c, "h0", job), b.start(t, c, "h1", job)
		if qa.Addr().String() != a.tr.Conn.LocalAddr().String() {
			t.Fatalf("job transport on %s, host socket %s", qa.Addr(), a.tr.Conn.LocalAddr())
		}
		ab, ba := quicConnect(t, qa, qb)
		msg := []byte("hello " + job)
		if err := ab.Send(msg); err != nil {
			t.Fatal(err)
		}
		got, err := recvTimeout(t, ba, 5*time.Second)
		if err != nil || !bytes.Equal(got, msg) {
			t.Fatalf("%s: got %q, %v", job, got, err)
		}
	}
	// Closing one job's transport leaves the socket and the other job up.
	a.job("job-1").Close()
	qa, qb := a.job("job-2"), b.job("job-2")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, _, err := qa.Dial(ctx, qb.Addr().String()); err != nil && !errors.Is(err, ErrDuplicateLink) {
		t.Fatalf("job-2 after job-1 closed: %v", err)
	}

	// No job of that name on h1: the handshake is refused.
	stray, err := ListenQUIC(QUICConfig{TLS: c.tls(t, "h0"), Shared: a.tr, ALPN: JobALPN("job-3")})
	if err != nil {
		t.Fatal(err)
	}
	defer stray.Close()
	if _, _, err := stray.Dial(ctx, b.tr.Conn.LocalAddr().String()); err == nil {
		t.Fatal("dial of a job the peer does not run succeeded")
	}
}
