// Package web serves a host daemon's HTTP address (`librahost host
// --http`), and that of a job run on this machine (`librahost run --http`,
// whose status is the job's driver's):
//
//	/             the dashboard: static/ (HTML, CSS and JS, no build step),
//	              embedded in the binary
//	/api/status   the hosts, their jobs, workers and newest checkpoints as
//	              JSON (Report): this host first, then the other hosts of
//	              its jobs
//	/events       the same report as server-sent events, sent again when it
//	              changes
//	/metrics      Prometheus metrics (host/metrics)
//
// One goroutine (the hub) reads the status every Config.Every while at
// least one page follows /events, and hands each page the newest report.
// /api/status and /metrics answer from a cache for Config.Fresh (250 ms):
// many pages polling, or scrapers asking 1,000 times a second, cost one
// status read (which asks the other hosts) or one gathering of the
// metrics per period, not one per request; a body the handler left plain
// is gzipped then too, once, for the clients that accept gzip. The page
// and its files are read into memory once (assets.go), gzipped once when
// that pays, and carry an ETag: a browser that has them gets a 304. Each
// answer is prepared headers and one body, with its length. Nothing served
// here changes a job or the host.
package web
