package main

import (
	"errors"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/librahost/librahost/host"
	"github.com/librahost/librahost/host/job"
)

func cmdCheckpoint(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("checkpoint", stderr)
	state := fs.String("state", "", "state directory of the running instance")
	timeout := fs.Duration("timeout", 10*time.Minute, "how long to wait for the checkpoint to be durable")
	id := fs.String("job", "", "the `ID` of a job over several hosts (with --hosts and --cluster)")
	cf := addClientFlags(fs)
	if err := parse(fs, args); err != nil {
		return err
	}
	if *id != "" {
		return checkpointJob(cf, *id, stdout)
	}
	if *state == "" {
		return errors.New("--state is required (a run or job on this machine), or --job with --hosts (a job over several hosts)")
	}
	r, err := job.RequestCheckpoint(*state, *timeout)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "checkpoint %d durable: %s written, guest paused %s\n", r.Epoch, host.FormatBytes(uint64(r.BytesStored)), r.Pause)
	return nil
}

func cmdRestore(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("restore", stderr)
	state := fs.String("state", "", "state directory to restore from")
	epoch := fs.Uint64("epoch", 0, "checkpoint to restore (default: the newest good one)")
	verbose := fs.Bool("v", false, "print a line per checkpoint")
	every := fs.Duration("checkpoint-every", 0, "take a checkpoint at this interval after the restore")
	overhead := overheadVar(fs)
	if err := parse(fs, args); err != nil {
		return err
	}
	if *state == "" {
		return errors.New("--state is required")
	}
	if err := checkEvery(int64(*every)); err != nil {
		return err
	}
	return runJob(job.Config{
		StateDir:           *state,
		Resume:             true,
		Epoch:              *epoch,
		Verbose:            *verbose,
		CheckpointEvery:    *every,
		CheckpointOverhead: float64(*overhead),
	}, stdout, stderr)
}

func cmdCkpt(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprintln(stderr, "usage: librahost ckpt ls|inspect|verify|repair --state DIR [--epoch N]")
		return errUsage
	}
	sub := args[0]
	fs := newFlags("ckpt "+sub, stderr)
	state := fs.String("state", "", "state directory")
	epoch := fs.Uint64("epoch", 0, "checkpoint to inspect (default: the newest)")
	data := fs.String("data", "", "a host's --data `directory` (ls: the committed epochs of a job over several hosts)")
	id := fs.String("job", "", "with --data: the job's `ID` (default: its only job)")
	if err := parse(fs, args[1:]); err != nil {
		return err
	}
	if *data != "" && sub == "ls" {
		return lsJob(*data, *id, stdout)
	}
	if *state == "" {
		return errors.New("--state is required")
	}
	switch sub {
	case "ls":
		list, err := job.ListCheckpoints(*state)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		job := len(list) > 0 && list[0].Workers > 0
		if job { // a job's epochs: sizes summed over its workers
			fmt.Fprintln(tw, "EPOCH\tCREATED\tWORKERS\tMEMORY\tSTORED\tNEW\tMODULE")
		} else {
			fmt.Fprintln(tw, "EPOCH\tCREATED\tMEMORY\tSTORED\tNEW\tMODULE")
		}
		for _, c := range list {
			workers := ""
			if job {
				workers = fmt.Sprintf("%d\t", c.Workers)
			}
			fmt.Fprintf(tw, "%d\t%s\t%s%s\t%s\t%s\t%.12s\n", c.Epoch, c.Created.Local().Format(time.DateTime), workers,
				host.FormatBytes(c.MemSize), host.FormatBytes(c.StoredBytes), host.FormatBytes(c.NewBytes), c.ModuleDigest)
		}
		return tw.Flush()
	case "inspect":
		d, err := job.InspectCheckpoint(*state, *epoch)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		for _, kv := range d.Fields {
			fmt.Fprintf(tw, "%s:\t%s\n", kv[0], kv[1])
		}
		return tw.Flush()
	case "verify":
		return ckptVerify(*state, stdout)
	case "repair":
		return ckptRepair(*state, stdout)
	default:
		return fmt.Errorf("unknown subcommand %q (want ls, inspect, verify or repair)", sub)
	}
}
