package jobsim

import (
	"fmt"
	"slices"
	"strings"

	"github.com/librahost/librahost/ckpt"
)

// checkCut checks the checkpoints a commit record names, before it is
// written: it names one of every rank, each is on every live host the
// record says holds it, and for
// every channel s→d the cut has no orphan (d delivered nothing s had not
// sent at its checkpoint) and loses nothing (every message s sent that d
// had not delivered is in s's log).
func (w *world) checkCut(rec *ckpt.CommitRecord) error {
	snaps := make([]*snapshot, w.cfg.Ranks)
	for r := range snaps {
		if !slices.ContainsFunc(rec.Digests, func(d ckpt.RankDigest) bool { return d.Rank == r }) {
			return fmt.Errorf("commit of e%d: the record names no checkpoint of rank %d", rec.Epoch, r)
		}
		for _, h := range rec.Holders[r] {
			if x := w.hosts[h]; !x.dead && x.store[ckey{r, rec.Epoch}] == nil {
				return fmt.Errorf("commit of e%d: live host h%d holds no checkpoint of rank %d", rec.Epoch, h, r)
			}
		}
		if snaps[r] = w.written[ckey{r, rec.Epoch}]; snaps[r] == nil {
			return fmt.Errorf("commit of e%d: rank %d's checkpoint was never written", rec.Epoch, r)
		}
	}
	for s := range snaps {
		for d := range snaps {
			sent := snaps[s].senders[d]
			got := snaps[d].recvs[s].Delivered
			if got > sent.Next-1 {
				return fmt.Errorf("commit of e%d: orphan: rank %d delivered %d messages from rank %d, which had sent %d", rec.Epoch, d, got, s, sent.Next-1)
			}
			if first := sent.Next - uint64(len(sent.Entries)); first > got+1 {
				return fmt.Errorf("commit of e%d: lost: rank %d's log to rank %d starts at %d, rank %d delivered only %d", rec.Epoch, s, d, first, d, got)
			}
		}
	}
	return nil
}

// checkEnd checks a finished job: each rank printed, and wrote, exactly
// what it does in a run without failures.
func (w *world) checkEnd() error {
	w.res.Output = w.out
	for r := range w.cfg.Ranks {
		if !slices.Equal(w.out[r], w.want[r]) {
			return fmt.Errorf("rank %d printed %d lines, not those of a run without failures (%d lines)", r, len(w.out[r]), len(w.want[r]))
		}
		x := w.hostOf(r)
		w.res.Files = append(w.res.Files, x.ranks[r].file)
		if !slices.Equal(x.ranks[r].file, w.want[r]) {
			return fmt.Errorf("rank %d's file has %d lines, not those of a run without failures", r, len(x.ranks[r].file))
		}
	}
	return nil
}

// checkStopped accepts a job that stopped only because every host holding
// some rank's committed checkpoint died.
func (w *world) checkStopped() error {
	var rec *ckpt.CommitRecord
	for _, x := range w.hosts {
		if r := x.records[w.coord.Committed()]; r != nil {
			rec = r
		}
	}
	if rec == nil || !strings.Contains(w.res.Stopped, "is on no live host") {
		return fmt.Errorf("the job stopped: %s", w.res.Stopped)
	}
	for _, hs := range rec.Holders {
		if !slices.ContainsFunc(hs, func(h ckpt.HostID) bool { return !w.hosts[h].dead }) {
			return nil
		}
	}
	return fmt.Errorf("the job stopped, though a live host holds every rank's checkpoint of e%d: %s", rec.Epoch, w.res.Stopped)
}
