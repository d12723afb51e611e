package node

import (
	"github.com/librahost/librahost/host/metrics"
)

// Metrics is the daemon's metrics (Prometheus), in a registry of its own.
func (d *Daemon) Metrics() *metrics.Host { return d.metrics }

// metricsSnapshot reports the jobs and workers that have not ended, by
// state, and the totals of every job's links.
func (d *Daemon) metricsSnapshot() metrics.Snapshot {
	s := metrics.Snapshot{Jobs: map[string]int{}, Workers: map[string]int{}}
	d.mu.Lock()
	defer d.mu.Unlock()
	s.Links = d.links
	for _, j := range d.jobs {
		if j.ep != nil {
			s.Links = metrics.AddCounters(s.Links, j.ep.Counters())
		}
		st := j.status()
		s.Jobs[st.State]++
		for _, w := range st.Workers {
			s.Workers[w.State]++
		}
	}
	return s
}

// endLinks adds the totals of a job's closed endpoint to the daemon's.
func (d *Daemon) endLinks(j *job) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.links = metrics.AddCounters(d.links, j.ep.Counters())
	j.ep = nil
}
