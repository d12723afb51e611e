package transport

import (
	"context"
	"crypto/tls"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

// quicCluster is a cluster directory with hosts h0..h(n-1) and, for tests
// that need outsiders, its TLS configurations.
type quicCluster struct {
	dir string
}

func newQUICCluster(t testing.TB, hosts ...string) *quicCluster {
	t.Helper()
	dir := t.TempDir()
	if err := InitCluster(dir, hosts); err != nil {
		t.Fatal(err)
	}
	return &quicCluster{dir: dir}
}

func (c *quicCluster) tls(t testing.TB, host string) *tls.Config {
	t.Helper()
	return mustTLS(t, c.dir, host)
}

// logRecorder collects Logf lines.
type logRecorder struct {
	mu    sync.Mutex
	lines []string
}

func (r *logRecorder) logf(format string, args ...any) {
	r.mu.Lock()
	r.lines = append(r.lines, fmt.Sprintf(format, args...))
	r.mu.Unlock()
}

func (r *logRecorder) waitFor(t testing.TB, substr string) string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		r.mu.Lock()
		for _, l := range r.lines {
			if strings.Contains(l, substr) {
				r.mu.Unlock()
				return l
			}
		}
		r.mu.Unlock()
		time.Sleep(10 * time.Millisecond)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	t.Fatalf("no log line with %q; have %q", substr, r.lines)
	return ""
}

func (c *quicCluster) listen(t testing.TB, host string, mod ...func(*QUICConfig)) (*QUICTransport, *logRecorder) {
	t.Helper()
	rec := &logRecorder{}
	cfg := QUICConfig{Listen: "127.0.0.1:0", TLS: c.tls(t, host), Logf: rec.logf}
	for _, m := range mod {
		m(&cfg)
	}
	tr, err := ListenQUIC(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tr.Close() })
	return tr, rec
}

// quicConnect dials b from a and returns both ends' links.
func quicConnect(t testing.TB, a, b *QUICTransport) (ab, ba Link) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	peer, l, err := a.Dial(ctx, b.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	if peer != b.HostID() {
		t.Fatalf("dialed %s, got peer %s", b.HostID(), peer)
	}
	peer, r, err := b.Accept(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if peer != a.HostID() {
		t.Fatalf("%s accepted %s, want %s", b.HostID(), peer, a.HostID())
	}
	return l, r
}

// recvTimeout runs l.Recv with a deadline.
func recvTimeout(t testing.TB, l Link, d time.Duration) ([]byte, error) {
	t.Helper()
	type res struct {
		b   []byte
		err error
	}
	ch := make(chan res, 1)
	go func() {
		b, err := l.Recv()
		ch <- res{b, err}
	}()
	select {
	case r := <-ch:
		return r.b, r.err
	case <-time.After(d):
		t.Fatalf("Recv did not return within %v", d)
		return nil, nil
	}
}
