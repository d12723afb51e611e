package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/librahost/librahost/host"
	"github.com/librahost/librahost/host/node"
)

// cmdMigrate moves one rank of a running job over several hosts to
// another host of the job (`librahost migrate --job ID --rank R --to
// HOST`): only that rank stops, and the command says how long.
func cmdMigrate(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("migrate", stderr)
	cf := addClientFlags(fs)
	job := fs.String("job", "", "the `ID` of the job (librahost status lists them)")
	rank := fs.Int("rank", -1, "the `rank` to move")
	to := fs.String("to", "", "the `name` of the host of the job to move it to")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: librahost migrate --job ID --rank R --to HOST --hosts A,B,C [--cluster DIR]")
		fs.PrintDefaults()
	}
	if err := parse(fs, args); err != nil {
		return err
	}
	addrs := cf.addrs()
	if fs.NArg() > 0 || *job == "" || *rank < 0 || *to == "" || len(addrs) == 0 || *cf.cluster == "" {
		fs.Usage()
		return errUsage
	}
	res, err := node.MigrateJob(context.Background(), cf.client(), addrs, *job, *rank, *to)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "rank %d of job %s moved to %s: downtime %v, total %v, sent %s of the guest's %s\n",
		*rank, *job, *to, roundDuration(res.Downtime), roundDuration(res.Total),
		host.FormatBytes(uint64(res.Sent)), host.FormatBytes(uint64(res.Size)))
	return nil
}

// roundDuration keeps three significant figures, enough for a summary.
func roundDuration(d time.Duration) time.Duration {
	switch {
	case d >= time.Second:
		return d.Round(10 * time.Millisecond)
	case d >= time.Millisecond:
		return d.Round(10 * time.Microsecond)
	default:
		return d.Round(time.Microsecond)
	}
}
