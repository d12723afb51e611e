package node

import (
	"io"
	"sync/atomic"

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

// countedStream counts the bytes read from and written to a replica's
// stream in librahost_replication_bytes_total as they pass: a replica is
// counted before its answer goes.
type countedStream struct {
	rw   io.ReadWriter
	js   *metrics.Jobs
	sent *atomic.Int64 // if set, counts the bytes written too
}

func (c countedStream) Read(p []byte) (int, error) {
	n, err := c.rw.Read(p)
	c.js.Replicated(0, uint64(n))
	return n, err
}

func (c countedStream) Write(p []byte) (int, error) {
	n, err := c.rw.Write(p)
	c.js.Replicated(uint64(n), 0)
	if c.sent != nil {
		c.sent.Add(int64(n))
	}
	return n, err
}
