package metrics

import "github.com/prometheus/client_golang/prometheus"

var (
	descInfo = prometheus.NewDesc("librahost_host_info",
		"The host's name and cluster; always 1.", []string{"host", "cluster"}, nil)
	descStart = prometheus.NewDesc("librahost_host_start_time_seconds",
		"When the host daemon started, in seconds since the Unix epoch.", nil, nil)
	descJobs = prometheus.NewDesc("librahost_jobs",
		"Jobs on this host that have not ended, by state.", []string{"state"}, nil)
	descWorkers = prometheus.NewDesc("librahost_workers",
		"Workers of the jobs on this host that have not ended, by state.", []string{"state"}, nil)
)

// snapshotCollector reports a Host's Snapshot, read once per scrape.
type snapshotCollector struct{ h *Host }

func (c snapshotCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range append([]*prometheus.Desc{descInfo, descStart, descJobs, descWorkers}, linkDescs...) {
		ch <- d
	}
}

func (c snapshotCollector) Collect(ch chan<- prometheus.Metric) {
	cfg := c.h.cfg
	ch <- prometheus.MustNewConstMetric(descInfo, prometheus.GaugeValue, 1, cfg.Name, cfg.Cluster)
	ch <- prometheus.MustNewConstMetric(descStart, prometheus.GaugeValue, float64(cfg.Started.UnixNano())/1e9)
	var s Snapshot
	if cfg.Snapshot != nil {
		s = cfg.Snapshot()
	}
	byState := func(d *prometheus.Desc, states []string, n map[string]int) {
		for _, st := range states {
			ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, float64(n[st]), st)
		}
	}
	byState(descJobs, cfg.JobStates, s.Jobs)
	byState(descWorkers, cfg.WorkerStates, s.Workers)
	collectLinks(ch, s.Links)
}
