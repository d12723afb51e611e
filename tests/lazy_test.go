package tests

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// A run resumed with its memory restored lazily, SIGKILLed while the
// background reader is held part-way through the memory (the guest runs
// on, its touches filled on demand), resumes again and prints what the
// uninterrupted run prints, exactly once.
func TestLazyRestoreKilledPartWay(t *testing.T) {
	t.Parallel()
	wasm := guest(t, "tests/testdata/timer")
	want := plainRun(t, wasm)
	state, outPath := prepareState(t, wasm)
	never := filepath.Join(t.TempDir(), "never")
	out := appendTo(t, outPath)
	p := startProc(t, out, []string{"LIBRAHOST_LAZY_HOLD=2:" + never}, "run", "--resume", "--state", state, "--checkpoint-every", "150ms")
	// The filler can say it is held before the run says how it restored.
	if !p.stderr.waitFor(func(s string) bool {
		return strings.Contains(s, "lazy fill held after 2 chunks") && strings.Contains(s, "restore: ")
	}) {
		t.Fatalf("the resume ended (%v) before its fill was held:\n%s", p.wait(), p.stderr)
	}
	if !strings.Contains(p.stderr.String(), "restore: lazy") {
		t.Fatalf("the resume did not restore lazily:\n%s", p.stderr)
	}
	if strings.Contains(p.stderr.String(), "resident") {
		t.Fatalf("the memory was all in before the kill:\n%s", p.stderr)
	}
	p.kill()
	if stderr, err := resumeTo(out, state); err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	compareOutput(t, readAll(t, outPath), want)
}

// A chunk damaged on disk and found during a lazy restore ends the run
// with the one-line error the up-front check gives; the next --resume
// checks every chunk first, falls back to the checkpoint before, and the
// output is still exactly once.
func TestLazyRestoreDamagedChunk(t *testing.T) {
	t.Parallel()
	wasm := guest(t, "tests/testdata/timer")
	want := plainRun(t, wasm)
	state, outPath := prepareState(t, wasm)
	editStore(t, state, corruptNewestValue)

	stderr := lateFindFallsBack(t, state, appendTo(t, outPath), false)
	if !strings.Contains(stderr, "restore: eager") {
		t.Fatalf("the resume after the late find restored lazily:\n%s", stderr)
	}
	compareOutput(t, readAll(t, outPath), want)
}

// lateFindFallsBack resumes state, whose newest epoch has a damaged chunk,
// twice, its output appended to out: the first resume must end in the
// one-line error an eager restore's up-front check gives (after the rank
// it names, in a job), and the second, verbose, must fall back to an
// older checkpoint and end well. It returns the second's stderr.
func lateFindFallsBack(t *testing.T, state string, out *os.File, job bool) string {
	t.Helper()
	upFront := upFrontError(t, state)
	stderr, err := resumeTo(out, state)
	if err == nil {
		t.Fatalf("a lazy restore of a damaged chunk ran to its end:\n%s", stderr)
	}
	oneLineError(t, stderr, "corrupt")
	// "librahost run: [rank N: ]…" against "librahost restore: …".
	_, late, _ := strings.Cut(stderr, ": ")
	_, early, _ := strings.Cut(upFront, ": ")
	if job {
		var rank int
		if _, err := fmt.Sscanf(late, "rank %d: ", &rank); err != nil {
			late = "(no rank) " + late
		} else {
			_, late, _ = strings.Cut(late, ": ")
		}
	}
	if late != early {
		t.Fatalf("the late find says\n%sthe up-front check\n%s", stderr, upFront)
	}
	stderr, err = resumeTo(out, state, "-v")
	if err != nil {
		t.Fatalf("resume after the late find: %v\n%s", err, stderr)
	}
	if !strings.Contains(stderr, "corrupt") || !strings.Contains(stderr, "older checkpoint") {
		t.Fatalf("the resume after the late find did not fall back:\n%s", stderr)
	}
	return stderr
}

// upFrontError is the one-line error an eager restore of the newest
// epoch of state (damaged) gives, on a copy: what its up-front check says.
func upFrontError(t *testing.T, state string) string {
	t.Helper()
	eager := filepath.Join(t.TempDir(), "eager")
	copyDir(t, state, eager)
	ls, _, _ := lh(t, "ckpt", "ls", "--state", state)
	lines := strings.Split(strings.TrimSpace(ls), "\n")
	newestEpoch := strings.Fields(lines[len(lines)-1])[0]
	_, upFront, code := lhEnv(t, []string{"LIBRAHOST_LAZY=off"}, "restore", "--state", eager, "--epoch", newestEpoch)
	if code != 1 {
		t.Fatalf("eager restore of the damaged epoch: exit %d\n%s", code, upFront)
	}
	oneLineError(t, upFront, "corrupt")
	return upFront
}

// resumeTo runs `librahost run --resume --state state` (with flags) to its
// end, its output appended to out, and returns its stderr.
func resumeTo(out *os.File, state string, flags ...string) (string, error) {
	cmd := exec.Command(librahost, append(append([]string{"run"}, flags...), "--resume", "--state", state)...)
	var errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = out, &errb
	err := cmd.Run()
	return errb.String(), err
}
