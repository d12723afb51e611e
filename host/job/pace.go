package job

import (
	"fmt"
	"time"
)

// DefaultCheckpointOverhead is the share of a rank's time that periodic
// checkpoints may hold it up, unless Config.CheckpointOverhead says
// otherwise (the CLI's --checkpoint-overhead default). It is the usual
// aim of checkpoint/restart, and it leaves room for what no pace can
// bound: the first periodic checkpoint, whose cost nothing before it
// tells, and the one a run ends right after.
const DefaultCheckpointOverhead = 0.1

// pacer spaces periodic checkpoints so that they hold the ranks up for at
// most a share of their time. It is Flink's minimum pause between
// checkpoints, from the end of one to the beginning of the next, but
// measured: a checkpoint that held a rank up for d (its pause, its waits
// for a copy-on-write capture's reader and its faults) lets the next
// periodic one begin no sooner than d/share after it ended, so that the
// rank runs on for at least that long for every d it stood: checkpoints
// add at most the share to its run time (1.1× at 10 %). A guest whose
// checkpoints cost it little (a pause of a millisecond) is checkpointed at
// every interval; one that rewrites a gigabyte of memory a second, whose
// every checkpoint has it wait for a gigabyte to be compressed, less often
// instead of not at all between them. The pause counts from the end, not
// the beginning: a round may wait long for a rank to stop (a guest in a
// long stretch without a preemption call, such as its first touch of
// gigabytes of memory), which is no time the rank ran. Checkpoints asked
// for (the guest's own, the control socket's, a stop's) are never held
// back.
type pacer struct {
	share float64   // 0: no limit
	next  time.Time // no periodic checkpoint begins before it
}

// due reports whether a periodic checkpoint may begin at now.
func (p *pacer) due(now time.Time) bool { return !now.Before(p.next) }

// after records that the round of epoch, begun at began and committed at
// ended, held who (a rank) up for d at most, and returns the line saying
// that this holds the next periodic round back past every after began,
// or "" if it does not.
func (p *pacer) after(epoch uint64, who string, began, ended time.Time, d, every time.Duration) string {
	next := p.held(ended, d)
	if every <= 0 || next.Sub(began) <= every {
		return ""
	}
	return fmt.Sprintf("checkpoint %d held %s up %s: the next periodic one begins no sooner than %s after it ended, not %s after it began (--checkpoint-overhead %g%%)",
		epoch, who, d.Round(time.Millisecond), next.Sub(ended).Round(100*time.Millisecond), every, p.share*100)
}

// held records that a checkpoint that ended at ended held a rank up for
// d at most, and returns the earliest time the next periodic one may
// begin.
func (p *pacer) held(ended time.Time, d time.Duration) time.Time {
	if p.share <= 0 || ended.IsZero() {
		return p.next
	}
	if next := ended.Add(time.Duration(float64(d) / p.share)); next.After(p.next) {
		p.next = next
	}
	return p.next
}
