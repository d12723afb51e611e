package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/librahost/librahost/host/node"
)

// cmdCancel stops a job on every host given, whether or not its submitter
// still runs.
func cmdCancel(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("cancel", stderr)
	cf := addClientFlags(fs)
	job := fs.String("job", "", "the `ID` of the job to stop (librahost status lists them); or give it as the argument")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: librahost cancel JOB --hosts A,B,C [--cluster DIR]   (or --job JOB)")
		fs.PrintDefaults()
	}
	if err := parse(fs, args); err != nil {
		return err
	}
	if *job == "" && fs.NArg() == 1 {
		*job = fs.Arg(0) // librahost cancel JOB, as logs and attach take it
	} else if fs.NArg() > 0 {
		fs.Usage()
		return errUsage
	}
	addrs := cf.addrs()
	if *job == "" || len(addrs) == 0 || *cf.cluster == "" {
		fs.Usage()
		return errUsage
	}
	sts, errs, err := node.CancelJob(context.Background(), cf.client(), addrs, *job)
	if err != nil {
		return err
	}
	found, failed := 0, 0
	for i, a := range addrs {
		switch {
		case errors.Is(errs[i], node.ErrNoJob):
			fmt.Fprintf(stdout, "%s: no job %s\n", a, *job)
		case errs[i] != nil:
			failed++
			state, reason := hostProblem(errs[i])
			fmt.Fprintf(stdout, "%s: %s: %s\n", a, state, oneLine(reason))
		default:
			found++
			var ws []string
			for _, w := range sts[i].Workers {
				ws = append(ws, fmt.Sprintf("rank %d %s", w.Rank, w.State))
			}
			state := sts[i].State
			if state == "running" || state == "preparing" {
				failed++ // the host gave up waiting for its workers
				state = "asked to stop, still " + state
			}
			fmt.Fprintf(stdout, "%s: job %s %s: %s\n", a, *job, state, strings.Join(ws, ", "))
		}
	}
	switch {
	case failed > 0:
		return exitError{1}
	case found == 0:
		return fmt.Errorf("no job %s on any of these hosts (librahost status lists the jobs)", *job)
	}
	return nil
}
