package main

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/librahost/librahost/host/node"
	"github.com/librahost/librahost/host/web"
)

func cmdHost(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("host", stderr)
	listen := fs.String("listen", "", "UDP `address` for control connections (host:port); jobs' transports use the same IP")
	data := fs.String("data", "", "data `directory` of this host (compilation cache)")
	cluster := fs.String("cluster", os.Getenv("LIBRAHOST_CLUSTER"), "cluster `directory` holding ca.crt and this host's key and certificate (default $LIBRAHOST_CLUSTER)")
	name := fs.String("name", "", "this host's `name` in the cluster (default: the machine's host name)")
	httpAddr := fs.String("http", "", "TCP `address` (host:port) serving a dashboard at / and Prometheus metrics at /metrics; anyone who reaches it may read them")
	failTimeout := fs.Duration("failure-timeout", defaultFailureTimeout, "how long a host of a job may be silent before it is declared dead, for jobs whose submitter gives none")
	verbose := fs.Bool("v", false, "log each checkpoint's pause and own capture time of each worker")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: librahost host --listen ADDR --data DIR --cluster DIR [--name NAME] [--http ADDR] [--failure-timeout DUR] [-v]")
		fs.PrintDefaults()
	}
	if err := parse(fs, args); err != nil {
		return err
	}
	if *listen == "" || *data == "" || *cluster == "" || fs.NArg() > 0 {
		fs.Usage()
		return errUsage
	}
	if err := checkFailureTimeout(*failTimeout); err != nil {
		return err
	}
	if *name == "" {
		hn, err := os.Hostname()
		if err != nil {
			return fmt.Errorf("no --name, and no host name: %v", err)
		}
		*name = hn
	}
	faults, err := node.FaultsFromEnv()
	if err != nil {
		return err
	}
	d, err := node.Listen(node.Config{
		Name: *name, Listen: *listen, DataDir: *data, ClusterDir: *cluster,
		Faults: faults, FailureTimeout: *failTimeout, Log: stderr, Verbose: *verbose,
	})
	if err != nil {
		return err
	}
	var hs *web.Server
	if *httpAddr != "" {
		hs, err = web.Listen(web.Config{Listen: *httpAddr, Metrics: d.Metrics().Handler(), Status: d.Overview})
		if err != nil {
			return err
		}
	}
	// The first line of stdout is the address (and the HTTP one), so that
	// scripts (and the tests) can listen on port 0.
	line := fmt.Sprintf("librahost host %s listening on %s (cluster %s)", *name, d.Addr(), d.ClusterID())
	if hs != nil {
		line += fmt.Sprintf(", http on http://%s/", hs.Addr())
	}
	fmt.Fprintln(stdout, line)
	if faults.Enabled() {
		fmt.Fprintf(stderr, "librahost host %s: fault injection on job links: %s\n", *name, faults)
	}
	// Ctrl-C or SIGTERM cancels the jobs still running here and exits 0.
	return withSignals(stopClean, stderr, func(stop chan struct{}) (int, error) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		go func() {
			select {
			case <-stop:
				cancel()
			case <-ctx.Done():
			}
		}()
		if hs != nil {
			go func() {
				if err := hs.Serve(ctx); err != nil {
					fmt.Fprintf(stderr, "librahost host %s: %v\n", *name, err)
				}
			}()
		}
		return 0, d.Serve(ctx)
	})
}
