package metrics

import (
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/librahost/librahost/transport"
)

// MaxRankLabel bounds the rank label of the per-worker gauges: ranks
// 0..MaxRankLabel-1 get series of their own; every worker, whatever its
// rank, counts in the totals (librahost_guest_memory_bytes and
// librahost_guest_dirty_bytes_per_second). A job has at most 65,536 ranks:
// a series per rank beyond this would make each scrape heavy for little.
const MaxRankLabel = 256

// Checkpoint outcomes (librahost_checkpoints_total{outcome}).
const (
	OutcomeCommitted = "committed"
	OutcomeFailed    = "failed" // this host could not make its part durable, or the job aborted the epoch
)

var outcomes = []string{OutcomeCommitted, OutcomeFailed}

// Directions of bytes and messages between hosts.
const (
	Sent     = "sent"
	Received = "received"
)

var directions = []string{Sent, Received}

// CheckpointStats is one committed checkpoint as one host saw it. The
// durations count from the checkpoint's trigger (the request, or the
// timer firing); a duration not known here is 0 and not observed.
type CheckpointStats struct {
	Pause time.Duration // the guest was stopped (the longest of this host's ranks)
	// Held is how long the checkpoint held the guest up: its pause, its
	// waits for a copy-on-write capture's reader and its write faults
	// (the longest of this host's ranks; 0 if not known).
	Held    time.Duration
	Durable time.Duration // until every rank here had its part durable in the store
	Commit  time.Duration // until the job committed the epoch (every rank acknowledged)
	// Size is the stored size of every chunk the checkpoint uses;
	// Incremental the bytes it added to the store (this host's ranks).
	Size, Incremental uint64
}

// Jobs holds the metrics of the jobs a process runs: checkpoints,
// recoveries, migrations, replication, control messages, and the gauges
// of their workers. The job driver makes a Job per job (Start) and
// reports on it; gauges of a job go when it ends.
type Jobs struct {
	pause, held, durable   prometheus.Histogram
	commit                 prometheus.Histogram
	size, incremental      prometheus.Histogram
	checkpoints            *prometheus.CounterVec
	written                prometheus.Counter
	replication, control   *prometheus.CounterVec
	recoveries, migrations prometheus.Histogram
	recovered              prometheus.Counter

	links bool // a run's: Job.Links feeds librahost_link_… (a host daemon reports its endpoints itself)

	mu    sync.Mutex
	live  map[*Job]struct{}
	ended transport.Counters // links of the jobs that ended
}

func newJobs() *Jobs {
	hist := func(name, help string, buckets []float64) prometheus.Histogram {
		return prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: namespace, Name: name, Help: help, Buckets: buckets})
	}
	var (
		pauses = prometheus.ExponentialBuckets(0.0005, 2, 14) // 0.5 ms to 4 s
		waits  = prometheus.ExponentialBuckets(0.002, 2, 14)  // 2 ms to 16 s
		longer = prometheus.ExponentialBuckets(0.01, 2, 14)   // 10 ms to 82 s
		sizes  = prometheus.ExponentialBuckets(64<<10, 4, 10) // 64 KiB to 16 GiB
	)
	j := &Jobs{
		pause:       hist("checkpoint_pause_seconds", "How long a checkpoint stopped the guest (the longest of this host's ranks).", pauses),
		held:        hist("checkpoint_held_seconds", "How long a checkpoint held the guest up: its pause, its waits for a copy-on-write capture to read what it wrote and its write faults (the longest of this host's ranks).", waits),
		durable:     hist("checkpoint_durable_seconds", "From a checkpoint's trigger until this host's part was durable.", waits),
		commit:      hist("checkpoint_commit_seconds", "From a checkpoint's trigger until the job committed it.", waits),
		size:        hist("checkpoint_size_bytes", "Stored size of every chunk a committed checkpoint uses (this host's ranks).", sizes),
		incremental: hist("checkpoint_incremental_bytes", "Bytes a committed checkpoint added to the store (this host's ranks).", sizes),
		checkpoints: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "checkpoints_total", Help: "Checkpoints ended, by outcome.",
		}, []string{"outcome"}),
		written: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: namespace, Name: "checkpoint_written_bytes_total", Help: "Bytes committed checkpoints added to the store.",
		}),
		replication: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "replication_bytes_total",
			Help: "Checkpoint bytes copied to other hosts' stores (sent) and from them (received).",
		}, []string{"direction"}),
		control: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "control_messages_total",
			Help: "Control messages between the hosts of jobs (checkpoint rounds, failures, recoveries), by direction.",
		}, []string{"direction"}),
		recoveries: hist("recovery_duration_seconds",
			"From a host's loss being found (on the coordinator's host) or the rollback reaching this host (on the others) until the job's ranks here ran again from its last committed checkpoint.", longer),
		recovered: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: namespace, Name: "job_recoveries_total",
			Help: "Recoveries of jobs from a lost host that this host took part in (its ranks rolled back to a committed checkpoint).",
		}),
		migrations: hist("migration_downtime_seconds", "How long a migrated worker did not run, from its stop until it ran on its new host.", longer),
		live:       map[*Job]struct{}{},
	}
	for _, o := range outcomes {
		j.checkpoints.WithLabelValues(o)
	}
	for _, d := range directions {
		j.replication.WithLabelValues(d)
		j.control.WithLabelValues(d)
	}
	return j
}

func (js *Jobs) collectors() []prometheus.Collector {
	return []prometheus.Collector{js.pause, js.held, js.durable, js.commit, js.size, js.incremental, js.checkpoints,
		js.written, js.replication, js.control, js.recoveries, js.recovered, js.migrations, workersCollector{js}}
}

// Job is one job's reporting handle. Every method of a nil *Job does
// nothing, so that a driver without metrics needs no checks.
type Job struct {
	js *Jobs
	n  int

	mu      sync.Mutex
	workers map[int]workerGauges // by rank
	store   uint64
	links   func() transport.Counters
}

type workerGauges struct {
	memory uint64
	dirty  float64
}

// Start begins reporting a job of n workers. On a nil *Jobs it returns
// a nil *Job, which reports nothing.
func (js *Jobs) Start(n int) *Job {
	if js == nil {
		return nil
	}
	j := &Job{js: js, n: n, workers: map[int]workerGauges{}}
	js.mu.Lock()
	js.live[j] = struct{}{}
	js.mu.Unlock()
	return j
}

// End stops reporting the job: its workers' gauges and store size go.
func (j *Job) End() {
	if j == nil {
		return
	}
	j.js.mu.Lock()
	defer j.js.mu.Unlock()
	if _, ok := j.js.live[j]; ok && j.js.links {
		j.js.ended = AddCounters(j.js.ended, j.readLinks())
	}
	delete(j.js.live, j)
}

// Links gives the job's transport endpoint's counters, read at each
// scrape and once more when the job ends. Only `librahost run` reports
// them (librahost_link_…); a host daemon reports its jobs' endpoints
// itself (Snapshot).
func (j *Job) Links(read func() transport.Counters) {
	if j != nil {
		j.mu.Lock()
		j.links = read
		j.mu.Unlock()
	}
}

func (j *Job) readLinks() transport.Counters {
	j.mu.Lock()
	read := j.links
	j.mu.Unlock()
	if read == nil {
		return transport.Counters{}
	}
	return read()
}

// linkTotals is the links' counters of every job, ended or live.
func (js *Jobs) linkTotals() transport.Counters {
	js.mu.Lock()
	defer js.mu.Unlock()
	t := js.ended
	for j := range js.live {
		t = AddCounters(t, j.readLinks())
	}
	return t
}

// AddCounters is the sum of two sets of link counters.
func AddCounters(a, b transport.Counters) transport.Counters {
	return transport.Counters{
		Sent: a.Sent + b.Sent, Resent: a.Resent + b.Resent, Acked: a.Acked + b.Acked, Received: a.Received + b.Received,
		Duplicates: a.Duplicates + b.Duplicates, BytesSent: a.BytesSent + b.BytesSent, BytesRecv: a.BytesRecv + b.BytesRecv,
		StableAcks: a.StableAcks + b.StableAcks, StaleLinks: a.StaleLinks + b.StaleLinks, Discarded: a.Discarded + b.Discarded,
	}
}

// CheckpointCommitted records a checkpoint the job committed.
func (j *Job) CheckpointCommitted(st CheckpointStats) {
	if j == nil {
		return
	}
	js := j.js
	js.checkpoints.WithLabelValues(OutcomeCommitted).Inc()
	for _, o := range []struct {
		h prometheus.Histogram
		d time.Duration
	}{{js.pause, st.Pause}, {js.held, st.Held}, {js.durable, st.Durable}, {js.commit, st.Commit}} {
		if o.d > 0 {
			o.h.Observe(o.d.Seconds())
		}
	}
	js.size.Observe(float64(st.Size))
	js.incremental.Observe(float64(st.Incremental))
	js.written.Add(float64(st.Incremental))
}

// CheckpointFailed records a checkpoint that did not commit.
func (j *Job) CheckpointFailed() {
	if j != nil {
		j.js.checkpoints.WithLabelValues(OutcomeFailed).Inc()
	}
}

// Replicated records checkpoint bytes sent to and received from other
// hosts' stores.
func (j *Job) Replicated(sent, received uint64) {
	if j != nil {
		j.js.Replicated(sent, received)
	}
}

// Replicated records checkpoint bytes sent to and received from other
// hosts' stores, for whoever copies them (a host daemon, which serves
// the replicas of every job's checkpoints).
func (js *Jobs) Replicated(sent, received uint64) {
	if js != nil {
		js.replication.WithLabelValues(Sent).Add(float64(sent))
		js.replication.WithLabelValues(Received).Add(float64(received))
	}
}

// ControlMessages records control messages sent to and received from the
// job's other hosts.
func (j *Job) ControlMessages(sent, received int) {
	if j != nil {
		j.js.control.WithLabelValues(Sent).Add(float64(sent))
		j.js.control.WithLabelValues(Received).Add(float64(received))
	}
}

// RecoveryBegan counts a recovery from a lost host reaching this host:
// the job's ranks here roll back.
func (j *Job) RecoveryBegan() {
	if j != nil {
		j.js.recovered.Inc()
	}
}

// RecoveryDone records a recovery that took d, from the failure being
// noticed (or the rollback reaching this host) until the job ran again.
func (j *Job) RecoveryDone(d time.Duration) {
	if j != nil {
		j.js.recoveries.Observe(d.Seconds())
	}
}

// MigrationDone records a worker's migration, which stopped it for
// downtime.
func (j *Job) MigrationDone(downtime time.Duration) {
	if j != nil {
		j.js.migrations.Observe(downtime.Seconds())
	}
}

// Worker sets the guest memory of rank's worker on this host and the rate
// at which it dirtied memory (bytes per second, over the last checkpoint
// interval). A rank outside the job is ignored.
func (j *Job) Worker(rank int, memory uint64, dirtyPerSecond float64) {
	if j == nil || rank < 0 || rank >= j.n {
		return
	}
	j.mu.Lock()
	j.workers[rank] = workerGauges{memory, dirtyPerSecond}
	j.mu.Unlock()
}

// StoreSize sets the size of the job's checkpoint store on this host.
func (j *Job) StoreSize(bytes uint64) {
	if j != nil {
		j.mu.Lock()
		j.store = bytes
		j.mu.Unlock()
	}
}

var (
	descWorkerMemory = prometheus.NewDesc("librahost_worker_memory_bytes",
		"Guest memory of the workers of each rank on this host (summed over jobs); ranks up to 255.", []string{"rank"}, nil)
	descWorkerDirty = prometheus.NewDesc("librahost_worker_dirty_bytes_per_second",
		"Rate at which the workers of each rank on this host dirtied memory over their last checkpoint interval (summed over jobs); ranks up to 255.", []string{"rank"}, nil)
	descMemory = prometheus.NewDesc("librahost_guest_memory_bytes",
		"Guest memory of every worker on this host.", nil, nil)
	descDirty = prometheus.NewDesc("librahost_guest_dirty_bytes_per_second",
		"Rate at which every worker on this host dirtied memory over its last checkpoint interval.", nil, nil)
	descStore = prometheus.NewDesc("librahost_store_size_bytes",
		"Size of the checkpoint stores of the jobs running on this host.", nil, nil)
)

// workersCollector sums the live jobs' gauges at each scrape.
type workersCollector struct{ js *Jobs }

func (c workersCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descWorkerMemory, descWorkerDirty, descMemory, descDirty, descStore} {
		ch <- d
	}
}

func (c workersCollector) Collect(ch chan<- prometheus.Metric) {
	memory, dirty := map[int]float64{}, map[int]float64{}
	var allMemory, allDirty, store float64
	c.js.mu.Lock()
	for j := range c.js.live {
		j.mu.Lock()
		for r, w := range j.workers {
			allMemory += float64(w.memory)
			allDirty += w.dirty
			if r < MaxRankLabel {
				memory[r] += float64(w.memory)
				dirty[r] += w.dirty
			}
		}
		store += float64(j.store)
		j.mu.Unlock()
	}
	c.js.mu.Unlock()
	for r, v := range memory {
		rank := strconv.Itoa(r)
		ch <- prometheus.MustNewConstMetric(descWorkerMemory, prometheus.GaugeValue, v, rank)
		ch <- prometheus.MustNewConstMetric(descWorkerDirty, prometheus.GaugeValue, dirty[r], rank)
	}
	ch <- prometheus.MustNewConstMetric(descMemory, prometheus.GaugeValue, allMemory)
	ch <- prometheus.MustNewConstMetric(descDirty, prometheus.GaugeValue, allDirty)
	ch <- prometheus.MustNewConstMetric(descStore, prometheus.GaugeValue, store)
}
