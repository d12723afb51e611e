package main

import (
	"context"
	"fmt"
	"io"

	"github.com/librahost/librahost/host/node"
)

// cmdLogs prints the output that the hosts of a job keep of it (the
// newest 64 MiB per host), and with -f follows it until the job ends.
func cmdLogs(args []string, stdout, stderr io.Writer) error {
	return jobOutput("logs", args, stdout, stderr)
}

// jobOutput is `logs` and `attach`: both print a job's output as its
// hosts keep it; attach follows it to the job's end and exits with the
// job's exit code.
func jobOutput(name string, args []string, stdout, stderr io.Writer) error {
	attach := name == "attach"
	fs := newFlags(name, stderr)
	cf := addClientFlags(fs)
	follow, from := new(bool), new(string)
	*from = "start"
	if attach {
		*follow = true
		fs.StringVar(from, "from", "start", "print the output from the `start` (as far as the hosts keep it) or from `now`")
	} else {
		fs.BoolVar(follow, "f", false, "follow: print the output as it comes until the job has ended")
	}
	prefix := fs.Bool("prefix", false, "start each line a worker printed with [rank]")
	fs.Usage = func() {
		flags := "[-f]"
		if attach {
			flags = "[--from start|now]"
		}
		fmt.Fprintf(stderr, "usage: librahost %s JOB --hosts A,B,C [--cluster DIR] %s [--prefix]\n", name, flags)
		fs.PrintDefaults()
	}
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 || len(cf.addrs()) == 0 || *cf.cluster == "" {
		fs.Usage()
		return errUsage
	}
	if *from != "start" && *from != "now" {
		return fmt.Errorf("--from %s: want start or now", *from)
	}
	return withSignals(stopNow, stderr, func(chan struct{}) (int, error) {
		end, err := node.Logs(context.Background(), node.LogsConfig{
			Client: cf.client(), Hosts: cf.addrs(), Job: fs.Arg(0), Follow: *follow, FromNow: *from == "now",
			Prefix: *prefix, Stdout: stdout, Stderr: stderr, Log: stderr,
		})
		switch {
		case err != nil:
			return 1, err
		case attach:
			return end.Outcome()
		}
		return 0, nil
	})
}
