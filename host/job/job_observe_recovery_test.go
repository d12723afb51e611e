package job

import (
	"slices"
	"testing"
	"time"

	"github.com/librahost/librahost/ckpt"
	"github.com/librahost/librahost/host/metrics"
	"github.com/librahost/librahost/host/metrics/metricstest"
)

// TestRecoveryObserved: a share's recoveries reach its Status and
// metrics: on the coordinator's host, the host lost, the epoch, the
// ranks restarted here from their replicas, counted when the rollback
// comes and timed at the RESUME; on another host, the lost host is the
// one whose ranks the new placement moves away.
func TestRecoveryObserved(t *testing.T) {
	run := metrics.NewRun(metrics.RunConfig{Started: time.Now()})
	st := NewStatus(0)
	j := &jobRun{cfg: Config{Metrics: run.Jobs(), Status: st,
		Share: &Share{Proto: ckpt.ProtoConfig{Place: []ckpt.HostID{0, 1, 2, 0, 1, 2}}}}}
	j.obs.met = run.Jobs().Start(6)
	scrape := func() (count, timed float64) {
		f := metricstest.Scrape(t, run.Handler())
		return f.Must(t, "librahost_job_recoveries_total"), f.Must(t, "librahost_recovery_duration_seconds")
	}
	if c, d := scrape(); c != 0 || d != 0 {
		t.Fatalf("before any recovery: %v counted, %v timed", c, d)
	}

	j.observeLost(1, 2, 2)
	j.observeRoute(1, []ckpt.HostID{0, 1, 0, 0, 1, 0})
	for _, r := range []int{0, 2, 3, 5} {
		j.observeRollback(1, 2, r, r == 2 || r == 5)
	}
	rs := st.Read().Recoveries
	if len(rs) != 1 || rs[0].Incarnation != 1 || rs[0].Epoch != 2 || !slices.Equal(rs[0].Lost, []ckpt.HostID{2}) ||
		!slices.Equal(rs[0].Moved, []int{2, 5}) || rs[0].Began.IsZero() || rs[0].Took != 0 {
		t.Fatalf("under way: %+v", rs)
	}
	if c, d := scrape(); c != 1 || d != 0 {
		t.Fatalf("under way: %v counted, %v timed, want 1 and 0", c, d)
	}
	j.observeResume(1)
	if rs = st.Read().Recoveries; rs[0].Took <= 0 {
		t.Fatalf("done: %+v", rs)
	}
	if c, d := scrape(); c != 1 || d != 1 {
		t.Fatalf("done: %v counted, %v timed, want 1 and 1", c, d)
	}

	// Seen from a host that does not run the coordinator: h1 is lost.
	j.observeRoute(2, []ckpt.HostID{0, 0, 0, 0, 0, 0})
	j.observeResume(2)
	rs = st.Read().Recoveries
	if len(rs) != 2 || rs[1].Incarnation != 2 || !slices.Equal(rs[1].Lost, []ckpt.HostID{1}) || len(rs[1].Moved) != 0 || rs[1].Took <= 0 {
		t.Fatalf("second recovery: %+v", rs)
	}
	if c, d := scrape(); c != 2 || d != 2 {
		t.Fatalf("two recoveries: %v counted, %v timed", c, d)
	}
}
