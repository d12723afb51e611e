package node

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/librahost/librahost/transport"
)

// Status tells a host that is down from one that refuses us or that we
// refuse, and says which: another cluster's CA on its side or on ours, or
// an address its certificate does not name.
func TestStatusRefusals(t *testing.T) {
	addrs, _, _ := startHosts(t, transport.Faults{}, "a")
	ctx := context.Background()
	ours, err := transport.LoadControlTLS(filepath.Join(testDir, "cluster"), "b")
	if err != nil {
		t.Fatal(err)
	}
	foreign, err := transport.LoadControlTLS(filepath.Join(testDir, "other"), "x")
	if err != nil {
		t.Fatal(err)
	}
	// Trusts the host, but presents a certificate of another cluster.
	distrusted := ours.Clone()
	distrusted.Certificates = foreign.Certificates

	// A host whose certificate names 127.0.0.1 but not 127.0.0.2.
	d, err := Listen(Config{Name: "c", Listen: "127.0.0.2:0", DataDir: t.TempDir(), ClusterDir: filepath.Join(testDir, "cluster")})
	if err != nil {
		t.Fatal(err)
	}
	sctx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); d.Serve(sctx) }()
	t.Cleanup(func() { stop(); <-done })

	// An address where nothing answers.
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	silent := pc.LocalAddr().String()
	pc.Close()

	for _, tc := range []struct {
		name    string
		addr    string
		cfg     *tls.Config
		timeout time.Duration
		kind    error
		state   string
		want    string
	}{
		{"foreign host", addrs[0], foreign, 0, ErrRefused, "refused", "not this cluster's CA"},
		{"we are foreign to it", addrs[0], distrusted, 0, ErrRefused, "refused", "it does not trust this cluster's CA"},
		{"address not in its certificate", d.Addr().String(), ours, 0, ErrRefused, "refused", "its certificate does not name this address"},
		{"nothing there", silent, ours, 300 * time.Millisecond, ErrHostDown, "down", "no answer"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			timeout := tc.timeout
			if timeout == 0 {
				timeout = 30 * time.Second
			}
			_, err := queryOne(ctx, tc.addr, timeout, tc.cfg)
			t.Log(err)
			he, ok := errors.AsType[*HostError](err)
			if !ok || !errors.Is(err, tc.kind) || he.State() != tc.state || !strings.Contains(he.Reason, tc.want) {
				t.Fatalf("got %v, want %s: …%s…", err, tc.state, tc.want)
			}
			if msg := err.Error(); strings.Contains(msg, "\n") || !strings.HasPrefix(msg, "host "+tc.addr+": "+tc.state+": ") {
				t.Fatalf("not one line naming the host and its state: %q", msg)
			}
		})
	}
}

// TestRefusedConnectionIsDown: a host that refuses connections (shutting
// down, or nothing listening on the port) is down, not failed.
func TestRefusedConnectionIsDown(t *testing.T) {
	for _, err := range []error{
		&quic.TransportError{ErrorCode: quic.ConnectionRefused, Remote: true},
		fmt.Errorf("dial: %w", syscall.ECONNREFUSED),
	} {
		if e := hostError("127.0.0.1:1", err); e.State() != "down" {
			t.Errorf("%v: %s", err, e)
		}
	}
}
