package metrics_test

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/librahost/librahost/host/metrics"
	"github.com/librahost/librahost/host/metrics/metricstest"
	"github.com/librahost/librahost/transport"
)

func newHost(s *metrics.Snapshot) *metrics.Host {
	return metrics.NewHost(metrics.HostConfig{
		Name: "a", Cluster: "c1", Started: time.Unix(1700000000, 0),
		JobStates: []string{"preparing", "running"}, EndStates: []string{"ended", "failed"},
		WorkerStates: []string{"running", "exited"},
		Snapshot:     func() metrics.Snapshot { return *s },
	})
}

// TestHostMetrics: a scrape parses with Prometheus's text parser, reports
// every state at 0 before anything happens, then what was counted and
// what the snapshot says; a label value outside its list is counted as
// "other", not added.
func TestHostMetrics(t *testing.T) {
	s := &metrics.Snapshot{}
	h := newHost(s)
	f := metricstest.Scrape(t, h.Handler())
	for _, c := range []struct {
		name   string
		labels []string
	}{
		{"librahost_jobs", []string{"state", "running"}},
		{"librahost_workers", []string{"state", "exited"}},
		{"librahost_jobs_ended_total", []string{"state", "failed"}},
		{"librahost_control_requests_total", []string{"kind", "prepare"}},
		{"librahost_refused_peers_total", []string{"reason", "not_in_job"}},
		{"librahost_link_messages_sent_total", nil},
		{"librahost_link_sent_bytes_total", nil},
		{"librahost_job_duration_seconds", nil},
	} {
		if v := f.Must(t, c.name, c.labels...); v != 0 {
			t.Errorf("%s %v = %v before anything happened", c.name, c.labels, v)
		}
	}
	if v := f.Must(t, "librahost_host_info", "host", "a", "cluster", "c1"); v != 1 {
		t.Errorf("host_info %v", v)
	}
	if v := f.Must(t, "librahost_host_start_time_seconds"); v != 1700000000 {
		t.Errorf("start time %v", v)
	}
	if _, ok := f.Value("go_goroutines"); !ok {
		t.Error("no Go runtime metrics")
	}

	h.ControlRequest(metrics.RequestPrepare)
	h.ControlRequest("made-up")
	h.RefusedPeer(metrics.RefusedProtocol)
	h.JobEnded("ended", 3*time.Second)
	*s = metrics.Snapshot{
		Jobs: map[string]int{"running": 2}, Workers: map[string]int{"running": 5},
		Links: transport.Counters{Sent: 7, Resent: 1, Acked: 5, Received: 6, Duplicates: 2, BytesSent: 900, BytesRecv: 800},
	}
	f = metricstest.Scrape(t, h.Handler())
	for _, c := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"librahost_control_requests_total", []string{"kind", "prepare"}, 1},
		{"librahost_control_requests_total", []string{"kind", "other"}, 1},
		{"librahost_refused_peers_total", []string{"reason", "protocol"}, 1},
		{"librahost_jobs_ended_total", []string{"state", "ended"}, 1},
		{"librahost_job_duration_seconds", nil, 1},
		{"librahost_jobs", []string{"state", "running"}, 2},
		{"librahost_jobs", []string{"state", "preparing"}, 0},
		{"librahost_workers", []string{"state", "running"}, 5},
		{"librahost_link_messages_sent_total", nil, 7},
		{"librahost_link_messages_resent_total", nil, 1},
		{"librahost_link_messages_acked_total", nil, 5},
		{"librahost_link_messages_received_total", nil, 6},
		{"librahost_link_messages_duplicate_total", nil, 2},
		{"librahost_link_sent_bytes_total", nil, 900},
		{"librahost_link_received_bytes_total", nil, 800},
	} {
		if v := f.Must(t, c.name, c.labels...); v != c.want {
			t.Errorf("%s %v = %v, want %v", c.name, c.labels, v, c.want)
		}
	}
	if _, ok := f.Value("librahost_control_requests_total", "kind", "made-up"); ok {
		t.Error("a label value outside the list was added")
	}
}

// TestHostMetricsLint: the names, units and help texts follow
// Prometheus's conventions (promlint), and two hosts in one process do
// not share metrics.
func TestHostMetricsLint(t *testing.T) {
	s := &metrics.Snapshot{}
	a, b := newHost(s), newHost(s)
	a.ControlRequest(metrics.RequestStatus)
	problems, err := testutil.GatherAndLint(a.Registry())
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("%s: %s", p.Metric, p.Text)
	}
	if v := metricstest.Scrape(t, b.Handler()).Must(t, "librahost_control_requests_total", "kind", "status"); v != 0 {
		t.Errorf("host b counted host a's request: %v", v)
	}
}
