package web

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/librahost/librahost/host/metrics"
	"github.com/librahost/librahost/host/node"
)

// BenchmarkHandlers: the CPU time of one request to each path, served
// from a host's metrics and a status of two hosts with a running job of 8
// workers, asked for with gzip accepted as the bench's load, Prometheus
// and browsers ask.
func BenchmarkHandlers(b *testing.B) {
	f := &fakeHosts{}
	ws := make([]node.WorkerStatus, 8)
	for i := range ws {
		ws[i] = node.WorkerStatus{Rank: i, State: "running"}
	}
	f.set(node.JobStatus{ID: "0123456789abcdef", State: "running", N: 8, Module: "ring.wasm", Workers: ws})
	m := metrics.NewHost(metrics.HostConfig{Name: "a", Cluster: "c1", Started: time.Now(),
		JobStates: []string{"running"}, EndStates: []string{"ended"}, WorkerStates: []string{"running"},
		Snapshot: func() metrics.Snapshot { return metrics.Snapshot{} }})
	j := m.Jobs().Start(8)
	for r := range 8 {
		j.Worker(r, 64<<20, 1e6)
	}
	s, err := Listen(Config{Listen: "127.0.0.1:0", Status: f.status, Metrics: m.Handler()})
	if err != nil {
		b.Fatal(err)
	}
	s.ln.Close()
	h := s.Handler()
	for _, path := range []string{"/", "/static/app.js", "/api/status", "/metrics"} {
		b.Run(path, func(b *testing.B) {
			req := httptest.NewRequest("GET", path, nil)
			req.Header.Set("Accept-Encoding", "gzip")
			for b.Loop() {
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, req)
				if rec.Code != http.StatusOK {
					b.Fatal(rec.Code)
				}
			}
		})
	}
}
