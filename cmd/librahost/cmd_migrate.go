package main

import (
	"context"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/librahost/librahost/host"
	"github.com/librahost/librahost/host/job"
	"github.com/librahost/librahost/host/node"
	"github.com/librahost/librahost/host/progress"
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
	ctx, cancel := context.WithCancel(context.Background())
	if progress.IsTerminal(stderr) {
		watchMigration(ctx, cf, addrs, *job, *rank, *to, stderr)
	}
	res, err := node.MigrateJob(ctx, cf.client(), addrs, *job, *rank, *to)
	cancel()
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "rank %d of job %s moved to %s: downtime %v, total %v, %d pre-copy rounds, sent %s of the guest's %s\n",
		*rank, *job, *to, roundDuration(res.Downtime), roundDuration(res.Total), res.Rounds,
		host.FormatBytes(uint64(res.Sent)), host.FormatBytes(uint64(res.Size)))
	return nil
}

// watchMigration draws the migration's progress on a terminal: a bar of
// the bytes sent against the guest's size, and a line above it for each
// pre-copy round with what the rank wrote a second meanwhile. It ends
// with ctx.
func watchMigration(ctx context.Context, cf clientFlags, addrs []string, id string, rank int, to string, w io.Writer) {
	var mu sync.Mutex
	var bar *progress.Bar
	rounds := 0
	node.WatchMigration(ctx, cf.client(), addrs, id, rank, func(p job.MigrateProgress) {
		mu.Lock()
		defer mu.Unlock()
		if bar == nil {
			bar = progress.New(w, fmt.Sprintf("rank %d to %s", rank, to), p.Size)
			context.AfterFunc(ctx, bar.Done)
		}
		bar.Report(p.Sent, max(p.Size, p.Sent))
		for ; rounds < p.Rounds; rounds++ {
			fmt.Fprintf(bar.Above(w), "pre-copy round %d: %s sent in all, the rank writes %s/s\n",
				rounds+1, host.FormatBytes(uint64(p.Sent)), host.FormatBytes(uint64(p.DirtyRate)))
		}
	})
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
