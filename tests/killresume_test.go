package tests

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// plainRun runs a module without checkpoints and returns its stdout.
func plainRun(t *testing.T, wasm string, args ...string) []byte {
	t.Helper()
	var out, errb bytes.Buffer
	cmd := exec.Command(librahost, append([]string{"run", wasm, "--"}, args...)...)
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("uninterrupted run: %v\n%s", err, errb.Bytes())
	}
	return out.Bytes()
}

// killResume runs wasm with frequent checkpoints, SIGKILLs it `kills`
// times, resuming each time in a new process, and lets the last one
// finish. Every process appends to one stdout file; its content is
// returned.
func killResume(t *testing.T, wasm string, kills int, every string, args ...string) []byte {
	t.Helper()
	return killResumeFlags(t, nil, wasm, kills, every, args...)
}

// killResumeFlags is killResume with more flags for `run` (e.g. -n 4).
// Each run is killed right after its k-th durable checkpoint, k random in
// 1..3: an event the run reports, so the kills land at the same points of
// the run on a fast machine and on a loaded one. A guest that ends before
// its run's k-th checkpoint ends the sequence early (logged); only one that
// ends before its first checkpoint, with nothing killed, fails the test.
func killResumeFlags(t *testing.T, flags []string, wasm string, kills int, every string, args ...string) []byte {
	t.Helper()
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 0))
	dir := t.TempDir()
	state := filepath.Join(dir, "state")
	outPath := filepath.Join(dir, "stdout")
	out := appendTo(t, outPath)
	killed := 0
	for i := 0; ; i++ {
		argv := append([]string{"run", "--state", state, "--checkpoint-every", every, "--checkpoint-overhead", "off"}, flags...)
		if i > 0 {
			argv = append(argv, "--resume")
		}
		argv = append(argv, wasm, "--")
		argv = append(argv, args...)
		p := startProc(t, out, nil, argv...)
		if killed < kills {
			k := 1 + rng.IntN(3)
			if epoch, ok := p.waitDurable(k); ok {
				p.kill()
				killed++
				t.Logf("run %d killed after its checkpoint #%d (epoch %d)", i, k, epoch)
				continue
			}
			t.Logf("run %d ended before its checkpoint #%d, after %d of %d kills", i, k, killed, kills)
		}
		checkExit(t, p.wait(), p.stderr.String())
		if killed == 0 {
			t.Fatalf("the guest ended before its first checkpoint: nothing was killed")
		}
		return readAll(t, outPath)
	}
}

func checkExit(t *testing.T, err error, stderr string) {
	t.Helper()
	var ee *exec.ExitError
	if errors.As(err, &ee) || err != nil {
		t.Fatalf("final run: %v\nstderr:\n%s", err, stderr)
	}
}

func readAll(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func compareOutput(t *testing.T, got, want []byte) {
	t.Helper()
	if bytes.Equal(got, want) {
		return
	}
	i := 0
	for i < len(got) && i < len(want) && got[i] == want[i] {
		i++
	}
	lo := max(0, i-80)
	t.Fatalf("output differs from the uninterrupted run at byte %d (got %d bytes, want %d)\ngot:  %q\nwant: %q",
		i, len(got), len(want), got[lo:min(len(got), i+80)], want[lo:min(len(want), i+80)])
}

func TestKillResumeGoSieve(t *testing.T) {
	t.Parallel()
	wasm := guest(t, "samples/sieve")
	want := plainRun(t, wasm, "-n", "200000000", "-every", "4")
	got := killResume(t, wasm, 5, "150ms", "-n", "200000000", "-every", "4")
	compareOutput(t, got, want)
}

func TestKillResumeCNbody(t *testing.T) {
	t.Parallel()
	wasm := guest(t, "samples/nbody/nbody.c")
	want := plainRun(t, wasm, "12000000", "400000")
	got := killResume(t, wasm, 5, "150ms", "12000000", "400000")
	compareOutput(t, got, want)
}

func TestKillResumeTimer(t *testing.T) {
	t.Parallel()
	wasm := guest(t, "tests/testdata/timer")
	want := plainRun(t, wasm)
	got := killResume(t, wasm, 4, "120ms")
	compareOutput(t, got, want)
}

func TestKillResumeFDTable(t *testing.T) {
	t.Parallel()
	wasm := guest(t, "tests/testdata/fdtable")
	want := plainRun(t, wasm)
	if !bytes.Contains(want, []byte("Bad file number")) {
		t.Fatalf("fd 0 should read as closed: %s", want)
	}
	got := killResume(t, wasm, 3, "100ms")
	compareOutput(t, got, want)
}

// A SIGKILL in the middle of a checkpoint write (held open by a failpoint
// inside the store's transaction) loses that checkpoint only: the resume
// starts from the one before, and the output is still exactly once.
func TestKillDuringCheckpointWrite(t *testing.T) {
	t.Parallel()
	wasm := guest(t, "tests/testdata/timer")
	want := plainRun(t, wasm)
	dir := t.TempDir()
	state := filepath.Join(dir, "st")
	outPath := filepath.Join(dir, "out")
	out := appendTo(t, outPath)
	var listed string
	never := filepath.Join(dir, "never") // a wait(PATH) failpoint holds the write until the kill
	for i, fp := range []string{"", "commit:tx", "commit:chunks"} {
		argv := []string{"run", "--state", state, "--checkpoint-every", "300ms", "--checkpoint-overhead", "off"}
		if i > 0 {
			argv = append(argv, "--resume")
		}
		var env []string
		if fp != "" {
			env = []string{"LIBRAHOST_FAILPOINTS=" + fp + "=wait(" + never + ")"}
		}
		p := startProc(t, out, env, append(argv, wasm)...)
		// The first run takes a few good checkpoints; the next ones are
		// killed while their first write is held inside the store.
		if i == 0 {
			p.mustDurable(t, 2)
		} else if !p.stderr.waitFor(func(s string) bool {
			return strings.Contains(s, "failpoint "+fp+": waiting")
		}) {
			t.Fatalf("run %d ended (%v) before its checkpoint write:\n%s", i, p.wait(), p.stderr)
		}
		p.kill()
		ls, _, _ := lh(t, "ckpt", "ls", "--state", state)
		if i == 0 {
			listed = ls
			if strings.Count(ls, "\n") < 2 {
				t.Fatalf("the first run took no checkpoint:\n%s", ls)
			}
		} else if ls != listed {
			t.Fatalf("a checkpoint killed during its write was kept:\nbefore:\n%s\nafter:\n%s", listed, ls)
		}
	}
	cmd := exec.Command(librahost, "run", "--resume", "--state", state, wasm)
	cmd.Stdout = out
	var errb bytes.Buffer
	cmd.Stderr = &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("%v\n%s", err, errb.Bytes())
	}
	compareOutput(t, readAll(t, outPath), want)
}

// appendTo opens path for appending, as a shell's >> does, so that the
// runs of a kill/resume sequence write one stdout; it closes with the test.
func appendTo(t *testing.T, path string) *os.File {
	t.Helper()
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}
