// Package web serves a host daemon's HTTP address (`librahost host
// --http`): its Prometheus metrics at /metrics.
//
// It only reads: nothing served here changes a job or the host.
package web
