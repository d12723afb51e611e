package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/librahost/librahost/host/node"
)

func cmdStatus(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("status", stderr)
	cf := addClientFlags(fs)
	asJSON := fs.Bool("json", false, "print the hosts' reports as JSON")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: librahost status --hosts A,B,C [--cluster DIR] [--json]")
		fs.PrintDefaults()
	}
	if err := parse(fs, args); err != nil {
		return err
	}
	if len(cf.addrs()) == 0 || *cf.cluster == "" || fs.NArg() > 0 {
		fs.Usage()
		return errUsage
	}
	addrs := cf.addrs()
	sts, errs, err := node.QueryStatus(context.Background(), cf.client(), addrs)
	if err != nil {
		return err
	}
	down := 0
	for _, e := range errs {
		if e != nil {
			down++
		}
	}
	if *asJSON {
		b, _ := json.MarshalIndent(node.HostEntries(addrs, sts, errs), "", "  ")
		fmt.Fprintf(stdout, "%s\n", b)
	} else {
		printStatus(stdout, addrs, sts, errs, time.Now())
	}
	if down > 0 {
		return exitError{1}
	}
	return nil
}

// hostProblem is why a host could not be queried: down, refused or
// failed, and the reason.
func hostProblem(err error) (state, reason string) {
	if he, ok := errors.AsType[*node.HostError](err); ok {
		return he.State(), he.Reason
	}
	return "failed", err.Error()
}

// printStatus prints one block per host: the host, then its jobs, newest
// last, each with its workers.
func printStatus(w io.Writer, addrs []string, sts []node.HostStatus, errs []error, now time.Time) {
	for i, a := range addrs {
		if errs[i] != nil {
			state, reason := hostProblem(errs[i])
			fmt.Fprintf(w, "%s: %s: %s\n", a, state, oneLine(reason))
			continue
		}
		st := sts[i]
		running := 0
		for _, j := range st.Jobs {
			if j.State == "running" || j.State == "preparing" {
				running++
			}
		}
		fmt.Fprintf(w, "host %s at %s: up %s, cluster %s, %d running job(s)\n",
			st.Host, a, now.Sub(st.Started).Round(time.Second), st.Cluster, running)
		jobs := st.Jobs
		sort.SliceStable(jobs, func(x, y int) bool { return jobs[x].Started.Before(jobs[y].Started) })
		for _, j := range jobs {
			age := now.Sub(j.Started).Round(time.Second).String()
			if !j.Ended.IsZero() {
				age = j.Ended.Sub(j.Started).Round(time.Millisecond).String() + ", ended " + j.Ended.Local().Format(time.DateTime)
			}
			from := j.Submitter
			if j.Detached {
				from += " (detached)"
			}
			fmt.Fprintf(w, "  job %s  %-9s %s  %d workers  from %s  %s\n", j.ID, j.State, j.Module, j.N, from, age)
			var ws []string
			for _, wk := range j.Workers {
				s := fmt.Sprintf("rank %d %s", wk.Rank, wk.State)
				if wk.State == "exited" && wk.Exit != 0 {
					s += fmt.Sprintf(" (%d)", wk.Exit)
				}
				if wk.Error != "" {
					s += ": " + oneLine(wk.Error)
				}
				ws = append(ws, s)
			}
			fmt.Fprintf(w, "    %s\n", strings.Join(ws, ", "))
			if j.Why != "" {
				fmt.Fprintf(w, "    %s\n", oneLine(j.Why))
			}
			for _, r := range j.Recoveries {
				fmt.Fprintf(w, "    %s\n", recoveryLine(r))
			}
		}
	}
}

// recoveryLine says in one line how a job recovered from a lost host.
func recoveryLine(r node.Recovery) string {
	s := fmt.Sprintf("incarnation %d: lost %s, rolled back to epoch %d", r.Incarnation, strings.Join(r.Lost, " "), r.Epoch)
	if len(r.Moved) > 0 {
		ranks := make([]string, len(r.Moved))
		for i, rank := range r.Moved {
			ranks[i] = strconv.Itoa(rank)
		}
		s += ", ranks " + strings.Join(ranks, " ") + " restarted here"
	}
	if r.Took == 0 {
		return "recovering " + s
	}
	return "recovered " + s + " in " + r.Took.Round(time.Millisecond).String()
}
