package metrics

import (
	"net/http"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/librahost/librahost/transport"
)

// HostConfig configures a Host's metrics.
type HostConfig struct {
	Name, Cluster string    // constant labels of librahost_host_info
	Started       time.Time // librahost_host_start_time_seconds
	// JobStates, EndStates and WorkerStates are the label values of the
	// gauges of live jobs, of librahost_jobs_ended_total and of the
	// workers gauge: every one is reported, 0 included.
	JobStates, EndStates, WorkerStates []string
	// Snapshot is read once per scrape.
	Snapshot func() Snapshot
}

// Snapshot is what a host daemon reports at a scrape.
type Snapshot struct {
	Jobs    map[string]int     // jobs not yet ended, by state
	Workers map[string]int     // their workers, by state
	Links   transport.Counters // of every job's links since the host started
}

// Control request kinds (librahost_control_requests_total{kind}).
const (
	RequestStatus  = "status"
	RequestPrepare = "prepare"
	RequestCancel  = "cancel"
	RequestInvalid = "invalid" // garbage, or a message that may not come first
)

// Reasons a peer is refused (librahost_refused_peers_total{reason}).
const (
	RefusedProtocol  = "protocol"   // none of the ALPNs offered is served here
	RefusedNoHostID  = "no_host_id" // a certificate that names no host
	RefusedJobEnded  = "job_ended"  // a link for a job that no longer runs here
	RefusedNotInJob  = "not_in_job" // a link from a host the job does not use
	RefusedWrongHost = "wrong_host" // a dialed address answered as another host
)

// labelOther stands for a label value outside its list (a bug).
const labelOther = "other"

const namespace = "librahost"

var (
	requestKinds   = []string{RequestStatus, RequestPrepare, RequestCancel, RequestInvalid}
	refusedReasons = []string{RefusedProtocol, RefusedNoHostID, RefusedJobEnded, RefusedNotInJob, RefusedWrongHost}
)

// Host holds a host daemon's metrics.
type Host struct {
	cfg      HostConfig
	reg      *prometheus.Registry
	requests *prometheus.CounterVec
	refused  *prometheus.CounterVec
	ended    *prometheus.CounterVec
	duration prometheus.Histogram
	jobs     *Jobs
}

// NewHost makes a registry holding a host's metrics, the Go runtime's and
// the process's.
func NewHost(cfg HostConfig) *Host {
	h := &Host{
		cfg: cfg,
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "control_requests_total",
			Help: "Control requests answered, by kind.",
		}, []string{"kind"}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "refused_peers_total",
			Help: "Connections and job links refused, by reason.",
		}, []string{"reason"}),
		ended: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "jobs_ended_total",
			Help: "Jobs that ended on this host, by how they ended.",
		}, []string{"state"}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: namespace, Name: "job_duration_seconds", Help: "Duration of the jobs that ended on this host, from PREPARE to their end.",
			Buckets: prometheus.ExponentialBuckets(0.1, 4, 9), // 0.1 s to 1.8 h
		}),
		jobs: newJobs(),
	}
	for _, k := range requestKinds {
		h.requests.WithLabelValues(k)
	}
	for _, r := range refusedReasons {
		h.refused.WithLabelValues(r)
	}
	for _, s := range cfg.EndStates {
		h.ended.WithLabelValues(s)
	}
	h.reg.MustRegister(h.requests, h.refused, h.ended, h.duration, snapshotCollector{h})
	h.reg.MustRegister(h.jobs.collectors()...)
	registerRuntime(h.reg)
	return h
}

// registerRuntime adds the Go runtime's and the process's metrics.
func registerRuntime(reg *prometheus.Registry) {
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
}

// Registry is the registry holding the host's metrics.
func (h *Host) Registry() *prometheus.Registry { return h.reg }

// Handler serves the metrics in Prometheus's formats.
func (h *Host) Handler() http.Handler { return handler(h.reg) }

// Jobs holds the metrics of the jobs run on this host.
func (h *Host) Jobs() *Jobs { return h.jobs }

func handler(reg *prometheus.Registry) http.Handler {
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg})
}

// ControlRequest counts a control request of a kind (Request…).
func (h *Host) ControlRequest(kind string) {
	h.requests.WithLabelValues(bounded(kind, requestKinds)).Inc()
}

// RefusedPeer counts a peer refused for a reason (Refused…).
func (h *Host) RefusedPeer(reason string) {
	h.refused.WithLabelValues(bounded(reason, refusedReasons)).Inc()
}

// JobEnded counts a job that ended in state (one of EndStates) after d.
func (h *Host) JobEnded(state string, d time.Duration) {
	h.ended.WithLabelValues(bounded(state, h.cfg.EndStates)).Inc()
	h.duration.Observe(d.Seconds())
}

// bounded keeps label values to their list.
func bounded(v string, list []string) string {
	if slices.Contains(list, v) {
		return v
	}
	return labelOther
}
