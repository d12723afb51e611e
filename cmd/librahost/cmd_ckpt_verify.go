package main

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/librahost/librahost/ckpt"
	"github.com/librahost/librahost/host/job"
)

// ckptVerify is `librahost ckpt verify`: a line per checkpoint, ok or why
// it cannot be resumed from; an error (exit 1) if any is damaged.
func ckptVerify(state string, stdout io.Writer) error {
	res, err := job.VerifyCheckpoints(state)
	if err != nil {
		return err
	}
	eps := slices.Clone(res.Epochs)
	slices.SortStableFunc(eps, func(a, b ckpt.EpochCheck) int {
		if a.Epoch != b.Epoch {
			return cmp.Compare(a.Epoch, b.Epoch)
		}
		return cmp.Compare(a.Key.Worker, b.Key.Worker)
	})
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "EPOCH\tWORKER\tRESULT")
	var bad []uint64 // epochs with a damaged worker checkpoint
	var newest uint64
	for _, ec := range eps {
		verdict := "ok"
		if ec.Err != nil {
			verdict = "damaged: " + detail(ec.Err)
			if len(bad) == 0 || bad[len(bad)-1] != ec.Epoch {
				bad = append(bad, ec.Epoch)
			}
		}
		fmt.Fprintf(tw, "%d\t%d\t%s\n", ec.Epoch, ec.Key.Worker, verdict)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, ec := range eps {
		if !slices.Contains(bad, ec.Epoch) {
			newest = max(newest, ec.Epoch)
		}
	}
	fmt.Fprintf(stdout, "%d chunks read, %d damaged\n", res.Chunks, res.Damaged)
	if len(eps) == 0 {
		return fmt.Errorf("%w: state dir %s holds no checkpoint", job.ErrNoCheckpoint, state)
	}
	if len(bad) == 0 {
		return nil
	}
	usable := "no epoch has every checkpoint intact"
	if newest > 0 {
		usable = fmt.Sprintf("epoch %d is the newest with every checkpoint intact", newest)
	}
	return fmt.Errorf("damaged checkpoints: epoch %s cannot be resumed from; %s", joinU64(bad), usable)
}

// ckptRepair is `librahost ckpt repair`.
func ckptRepair(state string, stdout io.Writer) error {
	res, err := job.RepairCheckpoints(state)
	if err != nil {
		return err
	}
	if res.Sound {
		fmt.Fprintf(stdout, "the checkpoint index of %s is not damaged: nothing to repair (`librahost ckpt verify` checks the chunks)\n", state)
		return nil
	}
	var kept []uint64
	for _, ke := range res.Kept {
		if !slices.Contains(kept, ke.Epoch) {
			kept = append(kept, ke.Epoch)
		}
	}
	slices.Sort(kept)
	for _, err := range res.Dropped {
		fmt.Fprintf(stdout, "dropped: %s\n", strings.TrimPrefix(err.Error(), "ckpt: "))
	}
	if len(kept) == 0 {
		fmt.Fprintf(stdout, "repaired the checkpoint index of %s: no checkpoint could be kept; the damaged index is kept as %s\n", state, res.Backup)
		return nil
	}
	fmt.Fprintf(stdout, "repaired the checkpoint index of %s: kept epoch %s (%d chunks), %d dropped; the damaged index is kept as %s\n",
		state, joinU64(kept), res.Chunks, len(res.Dropped), res.Backup)
	return nil
}

// detail is an error's message without the "ckpt: epoch N of job ...:"
// prefix that the table's columns already say.
func detail(err error) string {
	var e *ckpt.Error
	if errors.As(err, &e) {
		return e.Detail
	}
	return err.Error()
}

func joinU64(xs []uint64) string {
	s := make([]string, len(xs))
	for i, x := range xs {
		s[i] = fmt.Sprint(x)
	}
	return strings.Join(s, ", ")
}
