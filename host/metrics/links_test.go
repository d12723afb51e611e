package metrics_test

import (
	"reflect"
	"testing"

	"github.com/librahost/librahost/host/metrics"
	"github.com/librahost/librahost/host/metrics/metricstest"
	"github.com/librahost/librahost/transport"
)

// TestAddCountersEveryField: AddCounters sums every counter of a link,
// those added to transport.Counters later included, and a host reports
// the stability acks, stale links and discarded messages.
func TestAddCountersEveryField(t *testing.T) {
	var a, b transport.Counters
	va, vb := reflect.ValueOf(&a).Elem(), reflect.ValueOf(&b).Elem()
	for i := range va.NumField() {
		va.Field(i).SetUint(uint64(i + 1))
		vb.Field(i).SetUint(uint64(100 * (i + 1)))
	}
	sum := reflect.ValueOf(metrics.AddCounters(a, b))
	for i := range sum.NumField() {
		if got, want := sum.Field(i).Uint(), uint64(101*(i+1)); got != want {
			t.Errorf("AddCounters: %s = %d, want %d", sum.Type().Field(i).Name, got, want)
		}
	}

	h := newHost(&metrics.Snapshot{Links: transport.Counters{StableAcks: 3, StaleLinks: 2, Discarded: 5}})
	check(t, metricstest.Scrape(t, h.Handler()),
		want{"librahost_link_stable_acks_total", nil, 3},
		want{"librahost_link_stale_refused_total", nil, 2},
		want{"librahost_link_messages_discarded_total", nil, 5},
	)
}

// TestNilJobs: a driver given no metrics (a nil *Jobs) gets a nil *Job,
// on which every report does nothing.
func TestNilJobs(t *testing.T) {
	var js *metrics.Jobs
	j := js.Start(2)
	if j != nil {
		t.Fatalf("Start on a nil *Jobs = %v, want nil", j)
	}
	j.CheckpointCommitted(metrics.CheckpointStats{Size: 1})
	j.CheckpointFailed()
	j.Worker(0, 1, 1)
	j.StoreSize(1)
	j.Links(func() transport.Counters { return transport.Counters{} })
	j.End()
}
