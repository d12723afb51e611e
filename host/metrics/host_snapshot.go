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
	descSent = prometheus.NewDesc("librahost_link_messages_sent_total",
		"Guest messages sent to other hosts over job links (first transmissions).", nil, nil)
	descResent = prometheus.NewDesc("librahost_link_messages_resent_total",
		"Guest messages sent again over job links (retransmit timeouts, reconnects).", nil, nil)
	descAcked = prometheus.NewDesc("librahost_link_messages_acked_total",
		"Guest messages sent to other hosts that their receivers acknowledged.", nil, nil)
	descReceived = prometheus.NewDesc("librahost_link_messages_received_total",
		"Guest messages received from other hosts over job links, duplicates included.", nil, nil)
	descDuplicates = prometheus.NewDesc("librahost_link_messages_duplicate_total",
		"Guest messages received again after they were delivered, and dropped.", nil, nil)
	descBytesSent = prometheus.NewDesc("librahost_link_sent_bytes_total",
		"Bytes sent over job links.", nil, nil)
	descBytesRecv = prometheus.NewDesc("librahost_link_received_bytes_total",
		"Bytes received over job links.", nil, nil)
)

// snapshotCollector reports a Host's Snapshot, read once per scrape.
type snapshotCollector struct{ h *Host }

func (c snapshotCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descInfo, descStart, descJobs, descWorkers, descSent,
		descResent, descAcked, descReceived, descDuplicates, descBytesSent, descBytesRecv} {
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
	l := s.Links
	for _, m := range []struct {
		d *prometheus.Desc
		v uint64
	}{{descSent, l.Sent}, {descResent, l.Resent}, {descAcked, l.Acked}, {descReceived, l.Received}, {descDuplicates, l.Duplicates},
		{descBytesSent, l.BytesSent}, {descBytesRecv, l.BytesRecv}} {
		ch <- prometheus.MustNewConstMetric(m.d, prometheus.CounterValue, float64(m.v))
	}
}
