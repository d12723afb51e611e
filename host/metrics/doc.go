// Package metrics defines the Prometheus metrics of a librahost process
// and keeps them in a registry of its own (no global state: a test may run
// several hosts in one process).
//
// A Host holds a host daemon's metrics. Counters of events (control
// requests, refused peers, ended jobs) are incremented by the daemon as
// they happen; what the daemon can tell at any time (jobs and workers by
// state, the frames and bytes of job links) is read from a Snapshot at
// each scrape. Labels take only values from short fixed lists (states,
// request kinds, reasons): never a job ID.
//
// A Run holds the metrics of `librahost run` (one job in the process).
// Both hold a Jobs: the job driver calls Jobs.Start when a job starts and
// reports on the Job it gets (CheckpointCommitted, CheckpointFailed,
// Replicated, ControlMessages, RecoveryBegan, RecoveryDone, MigrationDone,
// Worker, StoreSize, and in a run Links) until End: checkpoint pause,
// durable and commit times and sizes as histograms, counters of bytes,
// messages and recoveries, and gauges of each worker's memory and dirty
// rate. The rank label of those gauges is bounded by the job's size and
// by MaxRankLabel (256); every worker counts in the unlabelled totals.
// With several jobs on one host, a rank's gauges are the sum over the
// jobs.
//
// The job driver (host/job) takes a *Jobs in its config (nil: no metrics)
// and reports as above; a host daemon hands it its Host's Jobs, and
// `librahost run --http ADDR` makes a Run, hands its Jobs to the driver
// and serves Run.Handler with host/web beside the job's status, which the
// driver keeps too (job.Status: its ranks and newest checkpoints).
//
// Names follow Prometheus conventions: librahost_…_total for counters,
// _seconds and _bytes for units. Handler serves them in the text format.
package metrics
