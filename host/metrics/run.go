package metrics

import (
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// RunConfig configures the metrics of `librahost run`: one job, in this
// process.
type RunConfig struct {
	Started time.Time // librahost_run_start_time_seconds
}

// Run holds the metrics of a `librahost run` process: its job's (Jobs),
// its messages' (librahost_link_…, from Job.Links), the Go runtime's and
// the process's.
type Run struct {
	cfg  RunConfig
	reg  *prometheus.Registry
	jobs *Jobs
}

// NewRun makes a registry holding a run's metrics.
func NewRun(cfg RunConfig) *Run {
	r := &Run{cfg: cfg, reg: prometheus.NewRegistry(), jobs: newJobs()}
	r.jobs.links = true
	r.reg.MustRegister(runCollector{r})
	r.reg.MustRegister(r.jobs.collectors()...)
	registerRuntime(r.reg)
	return r
}

// Registry is the registry holding the run's metrics.
func (r *Run) Registry() *prometheus.Registry { return r.reg }

// Handler serves the metrics in Prometheus's formats.
func (r *Run) Handler() http.Handler { return handler(r.reg) }

// Jobs holds the metrics of the run's job.
func (r *Run) Jobs() *Jobs { return r.jobs }

var descRunStart = prometheus.NewDesc("librahost_run_start_time_seconds",
	"When `librahost run` started, in seconds since the Unix epoch.", nil, nil)

// runCollector reports the start time and the job's links.
type runCollector struct{ r *Run }

func (c runCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range append([]*prometheus.Desc{descRunStart}, linkDescs...) {
		ch <- d
	}
}

func (c runCollector) Collect(ch chan<- prometheus.Metric) {
	ch <- prometheus.MustNewConstMetric(descRunStart, prometheus.GaugeValue, float64(c.r.cfg.Started.UnixNano())/1e9)
	collectLinks(ch, c.r.jobs.linkTotals())
}
