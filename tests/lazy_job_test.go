package tests

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
)

// heatRanks is the number of workers of killedHeatJob's job.
const heatRanks = 3

// lazyRanks fails the test unless every rank of a job of n says, in a
// verbose run's stderr, that its memory was restored lazily.
func lazyRanks(t *testing.T, stderr string, n int) {
	t.Helper()
	for r := range n {
		if !strings.Contains(stderr, fmt.Sprintf("rank %d: restore: lazy", r)) {
			t.Fatalf("rank %d did not restore lazily:\n%s", r, stderr)
		}
	}
}

// A job of several workers resumed with every rank's memory restored
// lazily prints what the job run without kills prints.
func TestLazyRestoreJob(t *testing.T) {
	t.Parallel()
	state, outPath, out, want := killedHeatJob(t)
	stderr, err := resumeTo(out, state, "-v")
	if err != nil {
		t.Fatalf("resume: %v\n%s", err, stderr)
	}
	lazyRanks(t, stderr, heatRanks)
	if n := strings.Count(stderr, "memory restored lazily: all"); n != heatRanks {
		t.Fatalf("%d ranks' memory said resident, want %d:\n%s", n, heatRanks, stderr)
	}
	compareOutput(t, readAll(t, outPath), want)
}

// A job resumed lazily, SIGKILLed while every rank's background reader
// is held part-way through its memory (the ranks run on, their touches
// filled on demand, and no checkpoint is taken), resumes again and
// prints what the job run without kills prints, exactly once.
func TestLazyRestoreJobKilledPartWay(t *testing.T) {
	t.Parallel()
	state, outPath, out, want := killedHeatJob(t)
	never := filepath.Join(t.TempDir(), "never")
	p := startProc(t, out, []string{"LIBRAHOST_LAZY_HOLD=2:" + never}, "run", "--resume", "--state", state, "--checkpoint-every", "150ms")
	if !p.stderr.waitFor(func(s string) bool {
		return strings.Count(s, "lazy fill held after 2 chunks") == heatRanks && strings.Count(s, "restore: ") == heatRanks
	}) {
		t.Fatalf("the resume ended (%v) before every rank's fill was held:\n%s", p.wait(), p.stderr)
	}
	stderr := p.stderr.String()
	lazyRanks(t, stderr, heatRanks)
	if strings.Contains(stderr, "resident") {
		t.Fatalf("a rank's memory was all in before the kill:\n%s", stderr)
	}
	p.kill()
	if strings.Contains(p.stderr.String(), "durable") {
		t.Fatalf("a checkpoint was taken before every rank's memory was in:\n%s", p.stderr)
	}
	if stderr, err := resumeTo(out, state); err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	compareOutput(t, readAll(t, outPath), want)
}

// A chunk damaged on disk and found while a job's ranks restore lazily
// ends the job with the one-line error the up-front check gives, naming
// the rank; the next --resume checks every rank's chunks first, the
// whole job falls back to the epoch before, and the output is still
// exactly once.
func TestLazyRestoreJobDamagedChunk(t *testing.T) {
	t.Parallel()
	state, outPath, out, want := killedHeatJob(t)
	editStore(t, state, corruptNewestValue)

	stderr := lateFindFallsBack(t, state, out, true)
	for r := range heatRanks {
		if !strings.Contains(stderr, fmt.Sprintf("rank %d: restore: eager (a lazy restore", r)) {
			t.Fatalf("rank %d's memory was not checked up front after the late find:\n%s", r, stderr)
		}
	}
	compareOutput(t, readAll(t, outPath), want)
}
