package web

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/librahost/librahost/host/metrics"
	"github.com/librahost/librahost/host/metrics/metricstest"
)

// serve starts a server on loopback for the test.
func serve(t *testing.T, cfg Config) string {
	t.Helper()
	cfg.Listen = "127.0.0.1:0"
	s, err := Listen(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	return "http://" + s.Addr().String()
}

// TestServeMetrics: /metrics over HTTP parses with Prometheus's parser.
func TestServeMetrics(t *testing.T) {
	m := metrics.NewHost(metrics.HostConfig{Name: "a", Cluster: "c1", Started: time.Now()})
	m.ControlRequest(metrics.RequestStatus)
	url := serve(t, Config{Metrics: m.Handler()})
	resp, err := http.Get(url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	f := metricstest.Parse(t, resp)
	if v := f.Must(t, "librahost_control_requests_total", "kind", "status"); v != 1 {
		t.Fatalf("status requests %v, want 1", v)
	}
}

// TestListenRefusesBadAddress: an address that cannot be listened on is
// one line naming it and what to give.
func TestListenRefusesBadAddress(t *testing.T) {
	for _, a := range []string{"nonsense", "127.0.0.1:99999"} {
		_, err := Listen(Config{Listen: a})
		if !errors.Is(err, ErrListen) || !strings.Contains(err.Error(), a) || strings.Contains(err.Error(), "\n") {
			t.Errorf("--http %s: %v", a, err)
		}
	}
}
