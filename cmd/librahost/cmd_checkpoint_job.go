package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/librahost/librahost/host"
	"github.com/librahost/librahost/host/node"
)

// checkpointJob asks the coordinator's host of a job over several hosts
// for a checkpoint at once (`librahost checkpoint --job ID`).
func checkpointJob(cf clientFlags, id string, stdout io.Writer) error {
	addrs := cf.addrs()
	if len(addrs) == 0 || *cf.cluster == "" {
		return errors.New("--job needs the job's hosts: --hosts A,B,C and --cluster DIR")
	}
	e, err := node.CheckpointJob(context.Background(), cf.client(), addrs, id)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "checkpoint %d of job %s committed\n", e, id)
	return nil
}

// lsJob lists the committed epochs of a job over several hosts that a
// host's --data directory holds.
func lsJob(data, id string, stdout io.Writer) error {
	id, list, err := node.ListJobCheckpoints(data, id)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "job %s\n", id)
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "EPOCH\tCREATED\tWORKERS\tRANKS HERE\tSTORED")
	for _, e := range list {
		rs := make([]string, len(e.Ranks))
		for i, r := range e.Ranks {
			rs[i] = fmt.Sprint(r)
		}
		fmt.Fprintf(tw, "%d\t%s\t%d\t%s\t%s\n", e.Epoch, e.Created.Local().Format(time.DateTime), e.Workers,
			strings.Join(rs, ","), host.FormatBytes(e.Stored))
	}
	return tw.Flush()
}
