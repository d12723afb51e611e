package node

import (
	"context"
	"crypto/tls"
	"testing"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/librahost/librahost/host/metrics/metricstest"
	"github.com/librahost/librahost/transport"
)

// TestDaemonMetrics: a host's metrics show a job running with its worker
// while it runs and the messages and bytes of its links moving; once it
// is cancelled, the job ended as cancelled, the control requests that did
// it, and a peer offering a protocol the host does not serve, refused.
func TestDaemonMetrics(t *testing.T) {
	ring := testGuest(t, "../../samples/ring")
	ds, _, logs := startDaemons(t, transport.Faults{}, "a", "b")
	addrs := []string{ds[0].Addr().String(), ds[1].Addr().String()}
	scrape := func() metricstest.Families { return metricstest.Scrape(t, ds[0].Metrics().Handler()) }
	if v := scrape().Must(t, "librahost_jobs", "state", stateRunning); v != 0 {
		t.Fatalf("%v jobs running before any was submitted", v)
	}

	cfg, _, _ := submitCfg(addrs, 2, ring, "-laps", "1000000")
	res := submitAsync(cfg)
	id := waitRunning(t, cfg.Client, addrs)
	var f metricstest.Families
	for {
		f = scrape()
		if f.Must(t, "librahost_link_messages_received_total") > 0 && f.Must(t, "librahost_link_messages_acked_total") > 0 {
			break
		}
		select {
		case <-res.done:
			t.Fatalf("the job ended: %v\n%s%s", res.err, logs[0], logs[1])
		case <-time.After(10 * time.Millisecond):
		}
	}
	if v := f.Must(t, "librahost_jobs", "state", stateRunning); v != 1 {
		t.Errorf("jobs running: %v, want 1", v)
	}
	if v := f.Must(t, "librahost_workers", "state", workerRunning); v != 1 {
		t.Errorf("workers running: %v, want 1 (rank 0)", v)
	}
	sentWhileRunning := f.Must(t, "librahost_link_messages_sent_total")

	if _, errs, err := CancelJob(context.Background(), cfg.Client, addrs, id); err != nil || errs[0] != nil {
		t.Fatal(err, errs)
	}
	res.wait(t)
	f = scrape()
	for _, c := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"librahost_jobs", []string{"state", stateRunning}, 0},
		{"librahost_workers", []string{"state", workerRunning}, 0},
		{"librahost_jobs_ended_total", []string{"state", stateCancelled}, 1},
		{"librahost_jobs_ended_total", []string{"state", stateEnded}, 0},
		{"librahost_job_duration_seconds", nil, 1},
		{"librahost_control_requests_total", []string{"kind", "prepare"}, 1},
		{"librahost_control_requests_total", []string{"kind", "cancel"}, 1},
	} {
		if v := f.Must(t, c.name, c.labels...); v != c.want {
			t.Errorf("%s %v = %v, want %v", c.name, c.labels, v, c.want)
		}
	}
	// The totals of a job's links outlive it.
	if v := f.Must(t, "librahost_link_messages_sent_total"); v < sentWhileRunning {
		t.Errorf("messages sent went down from %v to %v when the job ended", sentWhileRunning, v)
	}
	if f.Must(t, "librahost_link_sent_bytes_total") == 0 || f.Must(t, "librahost_link_received_bytes_total") == 0 {
		t.Error("no link bytes counted")
	}
	if v := f.Must(t, "librahost_control_requests_total", "kind", "status"); v < 1 {
		t.Errorf("status requests: %v", v)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if conn, err := quic.DialAddr(ctx, addrs[0], &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"nope/1"}}, nil); err == nil {
		conn.CloseWithError(0, "")
		t.Fatal("a peer offering an unknown protocol was let in")
	}
	if v := scrape().Must(t, "librahost_refused_peers_total", "reason", "protocol"); v != 1 {
		t.Errorf("peers refused for their protocol: %v, want 1", v)
	}
}
