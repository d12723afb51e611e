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
// Names follow Prometheus conventions: librahost_…_total for counters,
// _seconds and _bytes for units. Handler serves them in the text format.
package metrics
