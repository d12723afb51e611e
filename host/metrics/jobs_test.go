package metrics_test

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/librahost/librahost/host/metrics"
	"github.com/librahost/librahost/host/metrics/metricstest"
	"github.com/librahost/librahost/transport"
)

type want struct {
	name   string
	labels []string
	v      float64
}

func check(t *testing.T, f metricstest.Families, ws ...want) {
	t.Helper()
	for _, w := range ws {
		if v := f.Must(t, w.name, w.labels...); v != w.v {
			t.Errorf("%s %v = %v, want %v", w.name, w.labels, v, w.v)
		}
	}
}

// sum is a histogram's sum of observations.
func sum(t *testing.T, f metricstest.Families, name string) float64 {
	t.Helper()
	fam := f[name]
	if fam == nil || len(fam.Metric) != 1 || fam.Metric[0].Histogram == nil {
		t.Fatalf("/metrics has no histogram %s", name)
	}
	return fam.Metric[0].Histogram.GetSampleSum()
}

// TestJobMetrics: a host's /metrics carries the checkpoint, recovery,
// migration, replication and control metrics at 0 before any job, and
// they move as the job driver reports; the workers' gauges of two jobs
// add up by rank, a rank outside its job is ignored, and a job's gauges
// go when it ends.
func TestJobMetrics(t *testing.T) {
	h := newHost(&metrics.Snapshot{})
	f := metricstest.Scrape(t, h.Handler())
	check(t, f,
		want{"librahost_checkpoint_pause_seconds", nil, 0},
		want{"librahost_checkpoint_held_seconds", nil, 0},
		want{"librahost_checkpoint_durable_seconds", nil, 0},
		want{"librahost_checkpoint_commit_seconds", nil, 0},
		want{"librahost_checkpoint_size_bytes", nil, 0},
		want{"librahost_checkpoint_incremental_bytes", nil, 0},
		want{"librahost_checkpoints_total", []string{"outcome", "committed"}, 0},
		want{"librahost_checkpoints_total", []string{"outcome", "failed"}, 0},
		want{"librahost_checkpoint_written_bytes_total", nil, 0},
		want{"librahost_replication_bytes_total", []string{"direction", "sent"}, 0},
		want{"librahost_control_messages_total", []string{"direction", "received"}, 0},
		want{"librahost_recovery_duration_seconds", nil, 0},
		want{"librahost_job_recoveries_total", nil, 0},
		want{"librahost_migration_downtime_seconds", nil, 0},
		want{"librahost_guest_memory_bytes", nil, 0},
		want{"librahost_store_size_bytes", nil, 0},
	)

	a, b := h.Jobs().Start(2), h.Jobs().Start(4)
	a.CheckpointCommitted(metrics.CheckpointStats{Pause: 20 * time.Millisecond, Held: 900 * time.Millisecond, Durable: 300 * time.Millisecond,
		Commit: 400 * time.Millisecond, Size: 64 << 20, Incremental: 1 << 20})
	b.CheckpointCommitted(metrics.CheckpointStats{Pause: 10 * time.Millisecond, Durable: 100 * time.Millisecond, Size: 8 << 20, Incremental: 2 << 20})
	b.CheckpointFailed()
	a.Replicated(5000, 700)
	a.ControlMessages(6, 4)
	b.RecoveryBegan()
	b.RecoveryDone(2 * time.Second)
	b.MigrationDone(1500 * time.Millisecond)
	a.Worker(0, 100<<20, 1e6)
	a.Worker(1, 50<<20, 0)
	a.Worker(2, 1<<30, 0) // no rank 2 in a job of 2
	b.Worker(1, 10<<20, 3e6)
	b.Worker(3, 20<<20, 0)
	a.StoreSize(70 << 20)
	b.StoreSize(10 << 20)
	var nilJob *metrics.Job
	nilJob.CheckpointCommitted(metrics.CheckpointStats{Pause: time.Hour})
	nilJob.Worker(0, 1, 1)

	f = metricstest.Scrape(t, h.Handler())
	check(t, f,
		want{"librahost_checkpoint_pause_seconds", nil, 2},
		want{"librahost_checkpoint_held_seconds", nil, 1}, // not known of b's
		want{"librahost_checkpoint_durable_seconds", nil, 2},
		want{"librahost_checkpoint_commit_seconds", nil, 1}, // b's commit time is not known here
		want{"librahost_checkpoint_size_bytes", nil, 2},
		want{"librahost_checkpoints_total", []string{"outcome", "committed"}, 2},
		want{"librahost_checkpoints_total", []string{"outcome", "failed"}, 1},
		want{"librahost_checkpoint_written_bytes_total", nil, 3 << 20},
		want{"librahost_replication_bytes_total", []string{"direction", "sent"}, 5000},
		want{"librahost_replication_bytes_total", []string{"direction", "received"}, 700},
		want{"librahost_control_messages_total", []string{"direction", "sent"}, 6},
		want{"librahost_control_messages_total", []string{"direction", "received"}, 4},
		want{"librahost_recovery_duration_seconds", nil, 1},
		want{"librahost_job_recoveries_total", nil, 1},
		want{"librahost_migration_downtime_seconds", nil, 1},
		want{"librahost_worker_memory_bytes", []string{"rank", "0"}, 100 << 20},
		want{"librahost_worker_memory_bytes", []string{"rank", "1"}, 60 << 20},
		want{"librahost_worker_memory_bytes", []string{"rank", "3"}, 20 << 20},
		want{"librahost_worker_dirty_bytes_per_second", []string{"rank", "1"}, 3e6},
		want{"librahost_guest_memory_bytes", nil, 180 << 20},
		want{"librahost_guest_dirty_bytes_per_second", nil, 4e6},
		want{"librahost_store_size_bytes", nil, 80 << 20},
	)
	if s := sum(t, f, "librahost_checkpoint_pause_seconds"); s < 0.0299 || s > 0.0301 {
		t.Errorf("pause sum %v, want 0.03", s)
	}
	if s := sum(t, f, "librahost_checkpoint_held_seconds"); s < 0.899 || s > 0.901 {
		t.Errorf("held sum %v, want 0.9", s)
	}
	if s := sum(t, f, "librahost_checkpoint_incremental_bytes"); s != 3<<20 {
		t.Errorf("incremental sum %v", s)
	}
	if _, ok := f.Value("librahost_worker_memory_bytes", "rank", "2"); ok {
		t.Error("a rank outside its job has a series")
	}

	a.End()
	f = metricstest.Scrape(t, h.Handler())
	check(t, f,
		want{"librahost_worker_memory_bytes", []string{"rank", "1"}, 10 << 20},
		want{"librahost_guest_memory_bytes", nil, 30 << 20},
		want{"librahost_store_size_bytes", nil, 10 << 20},
		want{"librahost_checkpoints_total", []string{"outcome", "committed"}, 2},
	)
	if _, ok := f.Value("librahost_worker_memory_bytes", "rank", "0"); ok {
		t.Error("an ended job's worker still has a series")
	}
}

// TestRankLabelBounded: ranks past MaxRankLabel count in the totals but
// get no series of their own.
func TestRankLabelBounded(t *testing.T) {
	h := newHost(&metrics.Snapshot{})
	j := h.Jobs().Start(1000)
	for r := range 1000 {
		j.Worker(r, 1, 0)
	}
	f := metricstest.Scrape(t, h.Handler())
	if n := len(f["librahost_worker_memory_bytes"].Metric); n != metrics.MaxRankLabel {
		t.Errorf("%d series of worker memory, want %d", n, metrics.MaxRankLabel)
	}
	check(t, f, want{"librahost_guest_memory_bytes", nil, 1000})
}

// TestRunMetrics: a run's /metrics carries its job's metrics and its
// messages, read from the endpoint at each scrape and kept after the job
// ends; names follow Prometheus's conventions.
func TestRunMetrics(t *testing.T) {
	r := metrics.NewRun(metrics.RunConfig{Started: time.Unix(1700000000, 0)})
	f := metricstest.Scrape(t, r.Handler())
	check(t, f,
		want{"librahost_run_start_time_seconds", nil, 1700000000},
		want{"librahost_link_messages_sent_total", nil, 0},
		want{"librahost_checkpoint_pause_seconds", nil, 0},
	)
	if _, ok := f.Value("go_goroutines"); !ok {
		t.Error("no Go runtime metrics")
	}
	j := r.Jobs().Start(3)
	c := transport.Counters{Sent: 10, Acked: 8, Resent: 2, Duplicates: 1}
	j.Links(func() transport.Counters { return c })
	j.CheckpointCommitted(metrics.CheckpointStats{Pause: time.Millisecond, Durable: time.Second, Commit: time.Second, Size: 1 << 20})
	check(t, metricstest.Scrape(t, r.Handler()),
		want{"librahost_link_messages_sent_total", nil, 10},
		want{"librahost_link_messages_acked_total", nil, 8},
		want{"librahost_link_messages_resent_total", nil, 2},
		want{"librahost_link_messages_duplicate_total", nil, 1},
		want{"librahost_checkpoint_commit_seconds", nil, 1},
	)
	c.Sent = 12
	j.End()
	c.Sent = 99 // read no more
	check(t, metricstest.Scrape(t, r.Handler()), want{"librahost_link_messages_sent_total", nil, 12})

	problems, err := testutil.GatherAndLint(r.Registry())
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("%s: %s", p.Metric, p.Text)
	}
}
