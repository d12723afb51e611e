package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/librahost/librahost/host/node"
)

// submitResume continues a job whose coordinator's host was lost on the
// hosts given (`submit --resume JOB`): they hold its module, arguments
// and checkpoints, so only --cluster, --hosts, --as, --prefix and
// --failure-timeout go with it.
func submitResume(fs *flag.FlagSet, cf clientFlags, job string, prefix bool, failTimeout time.Duration, stdout, stderr io.Writer) error {
	var bad string
	failGiven := false
	fs.Visit(func(f *flag.Flag) {
		switch f.Name {
		case "resume", "hosts", "cluster", "as", "prefix":
		case "failure-timeout":
			failGiven = true
		default:
			if bad == "" {
				bad = "--" + f.Name
				if len(f.Name) == 1 {
					bad = "-" + f.Name
				}
			}
		}
	})
	switch {
	case bad != "":
		return fmt.Errorf("%s with --resume: a resumed job runs as it was submitted (its hosts kept it); give only --hosts, --cluster, --prefix or --failure-timeout", bad)
	case len(fs.Args()) > 0:
		return fmt.Errorf("%s with --resume: a resumed job runs the module it was submitted with (its hosts kept it); give no module or arguments", fs.Arg(0))
	case len(cf.addrs()) == 0 || *cf.cluster == "":
		fs.Usage()
		return errUsage
	}
	if failGiven {
		if err := checkFailureTimeout(failTimeout); err != nil {
			return err
		}
	}
	cfg := node.ResumeConfig{
		Client:         cf.client(),
		Hosts:          cf.addrs(),
		Job:            job,
		Prefix:         prefix,
		Stdout:         stdout,
		Stderr:         stderr,
		Log:            stderr,
		FailureTimeout: failTimeout,
	}
	return withSignals(stopClean, stderr, func(stop chan struct{}) (int, error) {
		cfg.Stop = stop
		return node.SubmitResume(context.Background(), cfg)
	})
}
