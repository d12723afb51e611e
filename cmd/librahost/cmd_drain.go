package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/librahost/librahost/host/node"
)

// cmdDrain moves every rank of every running job off a host, and keeps
// the host from taking new jobs or ranks until `librahost undrain`.
func cmdDrain(args []string, stdout, stderr io.Writer) error {
	return drainCommand("drain", true, args, stdout, stderr)
}

// cmdUndrain lets a drained host take jobs and ranks again.
func cmdUndrain(args []string, stdout, stderr io.Writer) error {
	return drainCommand("undrain", false, args, stdout, stderr)
}

func drainCommand(name string, on bool, args []string, stdout, stderr io.Writer) error {
	fs := newFlags(name, stderr)
	cf := addClientFlags(fs)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: librahost %s HOST --hosts A,B,C [--cluster DIR]   (HOST: a host's name, as status shows it)\n", name)
		fs.PrintDefaults()
	}
	if err := parse(fs, args); err != nil {
		return err
	}
	addrs := cf.addrs()
	if fs.NArg() != 1 || len(addrs) == 0 || *cf.cluster == "" {
		fs.Usage()
		return errUsage
	}
	target := fs.Arg(0)
	ctx := context.Background()
	sts, errs, err := node.QueryStatus(ctx, cf.client(), addrs)
	if err != nil {
		return err
	}
	at := -1
	var names []string
	for i, st := range sts {
		if errs[i] != nil {
			continue
		}
		names = append(names, st.Host)
		if st.Host == target {
			at = i
		}
	}
	if at < 0 {
		return fmt.Errorf("no host named %s among --hosts that answered (%s)", target, strings.Join(names, ", "))
	}
	if err := node.HoldHost(ctx, cf.client(), addrs[at], on); err != nil {
		return err
	}
	var failed []error
	for _, j := range sts[at].Jobs {
		if j.State != "running" {
			continue
		}
		err := node.DrainJob(ctx, cf.client(), addrs, j.ID, target, on)
		switch {
		case err == nil && on:
			fmt.Fprintf(stdout, "job %s: every rank left %s\n", j.ID, target)
		case err == nil:
			fmt.Fprintf(stdout, "job %s: %s takes its ranks again\n", j.ID, target)
		case strings.Contains(err.Error(), "takes no checkpoints") && !on:
		default:
			fmt.Fprintf(stdout, "job %s: %s\n", j.ID, oneLine(err.Error()))
			failed = append(failed, err)
		}
	}
	if on {
		fmt.Fprintf(stdout, "host %s takes no new jobs until `librahost undrain %s`\n", target, target)
	} else {
		fmt.Fprintf(stdout, "host %s takes new jobs again\n", target)
	}
	if len(failed) > 0 {
		return fmt.Errorf("%d job(s) could not be %sed: %w", len(failed), name, errors.Join(failed...))
	}
	return nil
}
