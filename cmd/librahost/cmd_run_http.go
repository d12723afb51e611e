package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/librahost/librahost/host/job"
	"github.com/librahost/librahost/host/metrics"
	"github.com/librahost/librahost/host/node"
	"github.com/librahost/librahost/host/web"
)

// checkHTTPAddr checks the form of --http ADDR before anything runs.
func checkHTTPAddr(addr string) error {
	_, port, err := net.SplitHostPort(addr)
	if err == nil {
		if _, perr := strconv.ParseUint(port, 10, 16); perr != nil {
			err = fmt.Errorf("port %q is not a number from 0 to 65535", port)
		}
	}
	if err != nil {
		return fmt.Errorf("--http %s: %v (give host:port, e.g. 127.0.0.1:9090)", addr, err)
	}
	return nil
}

// serveRunHTTP serves --http ADDR for a job run here: Prometheus metrics
// at /metrics, and the dashboard, /api/status and /events of the job, as
// its driver reports it. It says its URL in one line of the log; stop
// closes it.
func serveRunHTTP(cfg *job.Config, addr string, log io.Writer) (stop func(), err error) {
	started := time.Now()
	m := metrics.NewRun(metrics.RunConfig{Started: started})
	st := job.NewStatus(0)
	cfg.Metrics, cfg.Status = m.Jobs(), st
	name, err := os.Hostname()
	if err != nil {
		name = "localhost"
	}
	var srv *web.Server
	status := func(context.Context) []node.HostEntry {
		return []node.HostEntry{{Addr: srv.Addr().String(), Status: &node.HostStatus{
			Host: name, Started: started, Jobs: []node.JobStatus{runStatus(cfg, st.Read())},
		}}}
	}
	srv, err = web.Listen(web.Config{Listen: addr, Metrics: m.Handler(), Status: status})
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(log, "librahost: http on http://%s/\n", srv.Addr())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(ctx); err != nil {
			fmt.Fprintf(log, "librahost: %v\n", err)
		}
	}()
	return func() { cancel(); <-done }, nil
}

// runStatus is the job of a run as the dashboard shows a host's jobs.
func runStatus(cfg *job.Config, v job.StatusView) node.JobStatus {
	module := cfg.ModulePath
	if module == "" {
		module = cfg.StateDir
	}
	id := "run"
	if cfg.StateDir != "" {
		id = filepath.Base(cfg.StateDir)
	}
	state := v.State
	if state == "starting" {
		state = "preparing"
	}
	js := node.JobStatus{
		ID: id, Module: filepath.Base(module), N: max(cfg.N, len(v.Ranks), 1), Submitter: "run", State: state,
		Started: v.Started, Ended: v.Ended, Checkpoints: v.Checkpoints, Workers: []node.WorkerStatus{},
	}
	for _, r := range v.Ranks {
		js.Workers = append(js.Workers, node.WorkerStatus{Rank: r.Rank, State: r.State, Exit: r.Exit, Error: r.Error})
	}
	return js
}
