package transport

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/quic-go/quic-go"
)

var _ Link = (*quicLink)(nil)

func TestQUICTwoHostsBothWays(t *testing.T) {
	c := newQUICCluster(t, "a", "b")
	a, _ := c.listen(t, "a")
	b, _ := c.listen(t, "b")
	ab, ba := quicConnect(t, a, b)

	// Sizes around the copy limit, the read chunk and the bufio size.
	sizes := []int{1, 3, 4096, quicSendCopyLimit, quicSendCopyLimit + 1, quicReadBufferSize + 7, quicReadChunk + 5, 3*quicReadChunk + 1}
	rng := rand.New(rand.NewPCG(1, 2))
	mk := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		return b
	}
	var want [][]byte
	for _, n := range sizes {
		want = append(want, mk(n))
	}
	var wg sync.WaitGroup
	for _, dir := range []struct {
		name     string
		from, to Link
	}{{"a->b", ab, ba}, {"b->a", ba, ab}} {
		wg.Add(2)
		go func() {
			defer wg.Done()
			for _, w := range want {
				if err := dir.from.Send(w); err != nil {
					t.Errorf("%s: send: %v", dir.name, err)
					return
				}
			}
		}()
		go func() {
			defer wg.Done()
			for i, w := range want {
				got, err := dir.to.Recv()
				if err != nil {
					t.Errorf("%s: recv %d: %v", dir.name, i, err)
					return
				}
				if !bytes.Equal(got, w) {
					t.Errorf("%s: buffer %d: got %d bytes, want %d", dir.name, i, len(got), len(w))
				}
			}
		}()
	}
	wg.Wait()

	// Empty buffers are not sent; oversized ones are refused locally.
	if err := ab.Send(nil); err != nil {
		t.Error(err)
	}
	if err := ab.Send(make([]byte, defaultQUICMaxBuffer+1)); !errors.Is(err, ErrTooLarge) {
		t.Errorf("oversized send: %v", err)
	}

	// Closing one end brings down both.
	if err := ab.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := recvTimeout(t, ba, 5*time.Second); !errors.Is(err, io.EOF) || !errors.Is(err, ErrLinkClosed) {
		t.Errorf("recv after the peer closed: %v", err)
	}
	if err := ab.Send([]byte("x")); !errors.Is(err, io.EOF) {
		t.Errorf("send after close: %v", err)
	}
}

func TestQUICThreeHosts(t *testing.T) {
	c := newQUICCluster(t, "h0", "h1", "h2")
	var trs [3]*QUICTransport
	for i := range trs {
		trs[i], _ = c.listen(t, fmt.Sprintf("h%d", i))
	}
	// links[i][j] is host i's link to host j.
	var links [3][3]Link
	for i := range trs {
		for j := i + 1; j < len(trs); j++ {
			links[i][j], links[j][i] = quicConnect(t, trs[i], trs[j])
		}
	}
	const n = 200
	var wg sync.WaitGroup
	for i := range trs {
		for j := range trs {
			if i == j {
				continue
			}
			wg.Add(2)
			go func() {
				defer wg.Done()
				for k := range n {
					if err := links[i][j].Send(fmt.Appendf(nil, "h%d->h%d #%d", i, j, k)); err != nil {
						t.Error(err)
						return
					}
				}
			}()
			go func() {
				defer wg.Done()
				for k := range n {
					got, err := links[j][i].Recv()
					if err != nil {
						t.Error(err)
						return
					}
					if want := fmt.Sprintf("h%d->h%d #%d", i, j, k); string(got) != want {
						t.Errorf("got %q, want %q", got, want)
						return
					}
				}
			}()
		}
	}
	wg.Wait()
}

// TestQUICRefusesOutsiders: hosts with a certificate from another CA, or
// with none, get no link, and neither do hosts of another cluster that
// are dialed.
func TestQUICRefusesOutsiders(t *testing.T) {
	c := newQUICCluster(t, "a", "b")
	foreign := newQUICCluster(t, "b", "m")
	a, rec := c.listen(t, "a")

	t.Run("certificate from another CA", func(t *testing.T) {
		fb, _ := foreign.listen(t, "b")
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if _, l, err := fb.Dial(ctx, a.Addr().String()); err == nil {
			l.Close()
			t.Fatal("a foreign host's dial succeeded")
		} else {
			t.Logf("foreign dialer: %v", err)
		}
		// And a dials the foreign host: refused by a's own check.
		if _, l, err := a.Dial(ctx, fb.Addr().String()); err == nil {
			l.Close()
			t.Fatal("dial of a foreign host succeeded")
		} else {
			t.Logf("dialing a foreign host: %v", err)
		}
		assertNoAccept(t, a)
		assertNoAccept(t, fb)
		t.Log(rec.waitFor(t, "bad certificate"))

		// A client that trusts a but shows a foreign certificate is
		// refused by a's own check.
		cfg := foreign.tls(t, "m")
		cfg.RootCAs = c.tls(t, "b").RootCAs
		cfg.VerifyConnection = nil
		// Go clients send no certificate the server's CA list does not
		// name, unless made to.
		foreignCert := cfg.Certificates[0]
		cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &foreignCert, nil }
		conn, err := quic.DialAddr(ctx, a.Addr().String(), cfg, &quic.Config{})
		if err == nil {
			str, err := conn.OpenStreamSync(ctx)
			if err == nil {
				_, err = str.Write(quicHello{kind: helloDial, instance: 1, seq: 1}.append(nil))
			}
			if err == nil {
				_, err = io.ReadFull(str, make([]byte, quicHelloLen))
			}
			if err == nil {
				t.Fatal("a host with a foreign certificate got an answer")
			}
			conn.CloseWithError(0, "")
		}
		assertNoAccept(t, a)
		t.Log(rec.waitFor(t, "certificate signed by unknown authority"))
	})

	t.Run("no client certificate", func(t *testing.T) {
		cfg := c.tls(t, "b")
		cfg.Certificates = nil
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		conn, err := quic.DialAddr(ctx, a.Addr().String(), cfg, &quic.Config{})
		if err == nil {
			// TLS 1.3 clients finish first; the server then refuses the
			// missing certificate and no stream data gets through.
			str, err := conn.OpenStreamSync(ctx)
			if err == nil {
				_, err = str.Write(quicHello{kind: helloDial, instance: 1, seq: 1}.append(nil))
			}
			if err == nil {
				_, err = io.ReadFull(str, make([]byte, quicHelloLen))
			}
			if err == nil {
				t.Fatal("a host without a certificate got an answer")
			}
			t.Logf("no certificate: %v", err)
			conn.CloseWithError(0, "")
		}
		assertNoAccept(t, a)
		t.Log(rec.waitFor(t, "didn't provide a certificate"))
	})

	t.Run("cluster server, outsider's trust", func(t *testing.T) {
		// A client trusting the foreign CA refuses a's certificate.
		cfg := foreign.tls(t, "m")
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if conn, err := quic.DialAddr(ctx, a.Addr().String(), cfg, &quic.Config{}); err == nil {
			conn.CloseWithError(0, "")
			t.Fatal("a foreign client accepted a's certificate")
		}
		assertNoAccept(t, a)
	})

	// a still serves its own cluster.
	b, _ := c.listen(t, "b")
	ab, ba := quicConnect(t, a, b)
	exchange(t, ab, ba)
}

func assertNoAccept(t *testing.T, tr *QUICTransport) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if peer, l, err := tr.Accept(ctx); err == nil {
		l.Close()
		t.Fatalf("%s accepted a link from %s", tr.HostID(), peer)
	}
}

func exchange(t *testing.T, x, y Link) {
	t.Helper()
	if err := x.Send([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	if got, err := recvTimeout(t, y, 5*time.Second); err != nil || string(got) != "ping" {
		t.Fatalf("recv %q, %v", got, err)
	}
	if err := y.Send([]byte("pong")); err != nil {
		t.Fatal(err)
	}
	if got, err := recvTimeout(t, x, 5*time.Second); err != nil || string(got) != "pong" {
		t.Fatalf("recv %q, %v", got, err)
	}
}

// rawQUICClient connects to tr with a valid cluster certificate and opens
// the link stream, bypassing QUICTransport.
func rawQUICClient(t *testing.T, cfg *tls.Config, tr *QUICTransport) (*quic.Conn, *quic.Stream) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := quic.DialAddr(ctx, tr.Addr().String(), cfg, &quic.Config{})
	if err != nil {
		t.Fatal(err)
	}
	str, err := conn.OpenStreamSync(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return conn, str
}

func waitClosed(t *testing.T, conn *quic.Conn, code quic.ApplicationErrorCode) {
	t.Helper()
	select {
	case <-conn.Context().Done():
	case <-time.After(time.Minute):
		t.Fatal("the connection was not closed")
	}
	var app *quic.ApplicationError
	if err := context.Cause(conn.Context()); !errors.As(err, &app) || !app.Remote || app.ErrorCode != code {
		t.Fatalf("closed with %v, want the peer's application error %d", err, code)
	}
}

// TestQUICGarbage: peers with valid certificates that break the link
// protocol are disconnected with a logged reason; the transport goes on.
func TestQUICGarbage(t *testing.T) {
	c := newQUICCluster(t, "a", "b", "mallory")
	a, rec := c.listen(t, "a")
	mcfg := c.tls(t, "mallory")

	t.Run("bad hello", func(t *testing.T) {
		conn, str := rawQUICClient(t, mcfg, a)
		str.Write([]byte("GET / HTTP/1.1\r\nHost: a\r\n\r\n"))
		waitClosed(t, conn, quicCodeProtocol)
		rec.waitFor(t, "not a librahost hello")
	})
	t.Run("oversized buffer", func(t *testing.T) {
		conn, str := rawQUICClient(t, mcfg, a)
		str.Write(quicHello{kind: helloDial, instance: 7, seq: 1}.append(nil))
		hello := make([]byte, quicHelloLen)
		if _, err := io.ReadFull(str, hello); err != nil {
			t.Fatal(err)
		}
		str.Write([]byte{0xff, 0xff, 0xff, 0xff, 1, 2, 3})
		peer, l, err := a.Accept(context.Background())
		if err != nil || peer != "mallory" {
			t.Fatal(peer, err)
		}
		if _, err := recvTimeout(t, l, 5*time.Second); !errors.Is(err, io.EOF) {
			t.Fatalf("recv of garbage: %v", err)
		}
		waitClosed(t, conn, quicCodeProtocol)
		line := rec.waitFor(t, "exceeds the maximum")
		t.Log(line)
	})
	t.Run("empty buffer", func(t *testing.T) {
		conn, str := rawQUICClient(t, mcfg, a)
		str.Write(quicHello{kind: helloDial, instance: 7, seq: 2}.append(nil))
		str.Write([]byte{0, 0, 0, 0})
		_, l, err := a.Accept(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := recvTimeout(t, l, 5*time.Second); !errors.Is(err, io.EOF) {
			t.Fatalf("recv of garbage: %v", err)
		}
		waitClosed(t, conn, quicCodeProtocol)
		rec.waitFor(t, "empty buffer")
	})
	t.Run("silent", func(t *testing.T) {
		// A connection that never sends its hello is dropped after the
		// handshake timeout.
		a2, rec2 := c.listen(t, "b", func(cfg *QUICConfig) { cfg.HandshakeTimeout = 300 * time.Millisecond })
		conn, _ := rawQUICClient(t, mcfg, a2)
		waitClosed(t, conn, quicCodeProtocol)
		rec2.waitFor(t, "no link stream")
	})
	t.Run("extra stream", func(t *testing.T) {
		conn, str := rawQUICClient(t, mcfg, a)
		str.Write(quicHello{kind: helloDial, instance: 7, seq: 3}.append(nil))
		if _, err := io.ReadFull(str, make([]byte, quicHelloLen)); err != nil {
			t.Fatal(err)
		}
		_, l, err := a.Accept(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		// Only one stream is allowed: a second one waits for credit.
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		if _, err := conn.OpenStreamSync(ctx); err == nil {
			t.Fatal("a second stream was opened")
		}
		conn.CloseWithError(0, "")
	})

	// The transport still serves good peers.
	b, _ := c.listen(t, "b")
	ba, ab := quicConnect(t, b, a)
	exchange(t, ab, ba)
}

// TestQUICDuplicateConnections: hosts that dial each other at the same
// time end up with one connection, the same at both ends.
func TestQUICDuplicateConnections(t *testing.T) {
	c := newQUICCluster(t, "a", "b")
	for round := range 5 {
		a, _ := c.listen(t, "a")
		b, _ := c.listen(t, "b")
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		type dialed struct {
			l   Link
			err error
		}
		da, db := make(chan dialed, 1), make(chan dialed, 1)
		go func() { _, l, err := a.Dial(ctx, b.Addr().String()); da <- dialed{l, err} }()
		go func() { _, l, err := b.Dial(ctx, a.Addr().String()); db <- dialed{l, err} }()
		ra, rb := <-da, <-db
		for _, r := range []dialed{ra, rb} {
			if r.err != nil && !errors.Is(r.err, ErrDuplicateLink) {
				t.Fatalf("round %d: dial: %v", round, r.err)
			}
		}
		// The links each side holds now: kept ones answer, others are down.
		la := liveLink(t, a, ra.l)
		lb := liveLink(t, b, rb.l)
		if la == nil || lb == nil {
			t.Fatalf("round %d: a kept %v, b kept %v", round, la, lb)
		}
		if la.key.dialer != lb.key.dialer || la.key.seq != lb.key.seq || la.key.dialer != "a" {
			t.Fatalf("round %d: a kept %+v, b kept %+v; want the same, dialed by a", round, la.key, lb.key)
		}
		exchange(t, la, lb)
		cancel()
		a.Close()
		b.Close()
	}
}

// liveLink returns the link tr keeps to its peer after draining Accept,
// and checks that the other links handed out are down.
func liveLink(t *testing.T, tr *QUICTransport, dialed Link) *quicLink {
	t.Helper()
	var got []*quicLink
	if dialed != nil {
		got = append(got, dialed.(*quicLink))
	}
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		_, l, err := tr.Accept(ctx)
		cancel()
		if err != nil {
			break
		}
		got = append(got, l.(*quicLink))
	}
	tr.mu.Lock()
	var kept *quicLink
	for _, k := range tr.links {
		kept = k
	}
	tr.mu.Unlock()
	for _, l := range got {
		if l != kept {
			deadline := time.Now().Add(5 * time.Second)
			for !l.isDown() && time.Now().Before(deadline) {
				time.Sleep(5 * time.Millisecond)
			}
			if !l.isDown() {
				t.Errorf("%s: link %+v is neither kept nor down", tr.HostID(), l.key)
			}
		}
	}
	return kept
}

// TestQUICRedial: a host that dials again replaces its own older
// connection, and a restarted peer replaces its old process's.
func TestQUICRedial(t *testing.T) {
	c := newQUICCluster(t, "a", "b")
	a, _ := c.listen(t, "a")
	b, _ := c.listen(t, "b")
	ab1, ba1 := quicConnect(t, a, b)
	ab2, ba2 := quicConnect(t, a, b)
	if _, err := recvTimeout(t, ba1, 5*time.Second); !errors.Is(err, io.EOF) {
		t.Fatalf("old link at the acceptor: %v", err)
	}
	if _, err := recvTimeout(t, ab1, 5*time.Second); !errors.Is(err, io.EOF) {
		t.Fatalf("old link at the dialer: %v", err)
	}
	exchange(t, ab2, ba2)

	// b dials a while a's connection is kept: a's (lower ID) wins.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, _, err := b.Dial(ctx, a.Addr().String()); !errors.Is(err, ErrDuplicateLink) {
		t.Fatalf("b's dial: %v, want ErrDuplicateLink", err)
	}
	exchange(t, ab2, ba2)

	// A new process for b (a new instance) replaces the old connection.
	b2, _ := c.listen(t, "b")
	_, l, err := b2.Dial(ctx, a.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	_, r, err := a.Accept(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := recvTimeout(t, ab2, 5*time.Second); !errors.Is(err, io.EOF) {
		t.Fatalf("link to the old process: %v", err)
	}
	exchange(t, l, r)
}

// TestQUICDialedNameMustMatch: the dialed peer's certificate must be valid
// for the name or address dialed.
func TestQUICDialedNameMustMatch(t *testing.T) {
	c := newQUICCluster(t, "a", "b", "c=127.0.0.2")
	a, _ := c.listen(t, "a")
	onAddr := func(addr string) func(*QUICConfig) {
		return func(cfg *QUICConfig) { cfg.Listen = addr }
	}
	b, _ := c.listen(t, "b", onAddr("127.0.0.2:0"))
	cc, _ := c.listen(t, "c", onAddr("127.0.0.2:0"))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, l, err := a.Dial(ctx, b.Addr().String()); err == nil {
		l.Close()
		t.Fatal("b's certificate was taken for 127.0.0.2")
	} else {
		t.Logf("dial b at 127.0.0.2: %v", err)
	}
	if _, _, err := a.Dial(ctx, cc.Addr().String()); err != nil {
		t.Fatalf("dial c at 127.0.0.2: %v", err)
	}
	// By name: every certificate is valid for localhost.
	_, port, _ := strings.Cut(a.Addr().String(), ":")
	if peer, _, err := cc.Dial(ctx, "localhost:"+port); err != nil && !errors.Is(err, ErrDuplicateLink) {
		t.Fatalf("dial a as localhost: %v", err)
	} else if peer != "a" {
		t.Fatalf("dialed a, got %q", peer)
	}
}

// TestQUICCloseUnblocks: Close wakes a Recv waiting on the same link.
func TestQUICCloseUnblocks(t *testing.T) {
	c := newQUICCluster(t, "a", "b")
	a, _ := c.listen(t, "a")
	b, _ := c.listen(t, "b")
	ab, _ := quicConnect(t, a, b)
	done := make(chan error, 1)
	go func() {
		_, err := ab.Recv()
		done <- err
	}()
	time.Sleep(50 * time.Millisecond)
	ab.Close()
	select {
	case err := <-done:
		if !errors.Is(err, io.EOF) {
			t.Fatalf("recv: %v", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("Close did not wake Recv")
	}
	// Closing the transport closes the links it keeps.
	_, l := quicConnect(t, a, b)
	b.Close()
	if _, err := recvTimeout(t, l, 5*time.Second); !errors.Is(err, io.EOF) {
		t.Fatalf("recv after the transport closed: %v", err)
	}
	if _, _, err := b.Accept(context.Background()); !errors.Is(err, ErrTransportClosed) {
		t.Fatalf("accept after close: %v", err)
	}
}
