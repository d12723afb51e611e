package node

import (
	"context"
	"errors"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/librahost/librahost/ckpt"
	"github.com/librahost/librahost/host/jobctl"
	"github.com/librahost/librahost/transport"
)

// TestDaemonJobControl: a daemon hands the connections that ask for
// jobctl.ALPN on its socket to its Hub, which routes them to the job's
// Endpoint: a control message from another host of the job arrives.
func TestDaemonJobControl(t *testing.T) {
	ds, _, _ := startDaemons(t, transport.Faults{}, "a")
	d := ds[0]
	hosts := []string{"a", "b"}
	ea, err := d.jobctl.Open(jobctl.Config{Job: "j1", Hosts: hosts, Self: 0})
	if err != nil {
		t.Fatal(err)
	}
	defer ea.Close()

	tc, err := transport.LoadHostTLS(filepath.Join(testDir, "cluster"), "b")
	if err != nil {
		t.Fatal(err)
	}
	udp, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	tr := &quic.Transport{Conn: udp}
	defer tr.Close()
	hb, err := jobctl.NewHub(jobctl.HubConfig{TLS: tc, Transport: tr, Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	defer hb.Close()
	eb, err := hb.Open(jobctl.Config{Job: "j1", Hosts: hosts, Self: 1, CoordinatorAddr: d.Addr().String(), Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	eb.Send(0, ckpt.Msg{Kind: ckpt.MsgRecovered, From: 1, To: 0, Inc: 1})
	select {
	case r := <-ea.Recv():
		if r.From != 1 || r.Msg.Kind != ckpt.MsgRecovered {
			t.Fatalf("got %v from h%d", r.Msg, r.From)
		}
	case <-time.After(time.Minute): // only ends a hang
		t.Fatal("no message through the daemon's socket")
	}
}

// TestFailureTimeoutReachesHosts: a job's failure timeout is the
// submitter's if it gives one, else the host's; a negative one is
// refused by the daemon, by Submit and on the wire.
func TestFailureTimeoutReachesHosts(t *testing.T) {
	ring := testGuest(t, "../../samples/ring")
	log := &syncBuffer{}
	d, err := Listen(Config{Name: "a", Listen: "127.0.0.1:0", DataDir: t.TempDir(),
		ClusterDir: filepath.Join(testDir, "cluster"), FailureTimeout: 3 * time.Second, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); d.Serve(ctx) }()
	defer func() { cancel(); <-done }()
	for _, tc := range []struct {
		given time.Duration
		want  string
	}{{0, "failure timeout 3s"}, {1500 * time.Millisecond, "failure timeout 1.5s"}} {
		cfg, _, errOut := submitCfg([]string{d.Addr().String()}, 2, ring, "-laps", "1")
		cfg.FailureTimeout = tc.given
		if code, err := Submit(context.Background(), cfg); err != nil || code != 0 {
			t.Fatalf("exit %d, %v\nstderr: %s", code, err, errOut)
		}
		if !strings.Contains(log.String(), tc.want) {
			t.Fatalf("submitted with %v: the host's log has no %q:\n%s", tc.given, tc.want, log)
		}
	}
	cfg, _, _ := submitCfg([]string{d.Addr().String()}, 2, ring)
	cfg.FailureTimeout = -time.Second
	if _, err := Submit(context.Background(), cfg); err == nil || !strings.Contains(err.Error(), "failure timeout -1s") {
		t.Fatalf("Submit with a negative failure timeout: %v", err)
	}
	if _, err := Listen(Config{Name: "a", Listen: "127.0.0.1:0", DataDir: t.TempDir(),
		ClusterDir: filepath.Join(testDir, "cluster"), FailureTimeout: -1}); err == nil {
		t.Fatal("a daemon with a negative failure timeout")
	}
	p := prepareMsg{Job: "j", N: 1, Placement: []string{"a"}, FailureTimeout: -1}
	if err := p.check(); !errors.Is(err, ErrProtocol) {
		t.Fatalf("PREPARE with a negative failure timeout: %v", err)
	}
}
