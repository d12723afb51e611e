package tests

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// SIGTERM takes a final checkpoint and exits; --resume continues, and the
// two runs together print what one uninterrupted run prints.
func TestSigtermCheckpointAndResume(t *testing.T) {
	t.Parallel()
	wasm := guest(t, "tests/testdata/timer")
	want := plainRun(t, wasm)
	dir := t.TempDir()
	state := filepath.Join(dir, "st")
	var out, errb bytes.Buffer
	p := startProc(t, &out, nil, "run", "--state", state, wasm)
	p.mustStdout(t, "tick 4 ")
	p.signal(syscall.SIGTERM)
	err := p.wait()
	if p.cmd.ProcessState.ExitCode() != 143 {
		t.Fatalf("exit %v, want 143\n%s", err, p.stderr)
	}
	if !strings.Contains(p.stderr.String(), "--resume") {
		t.Fatalf("stderr does not say how to resume:\n%s", p.stderr)
	}
	cmd := exec.Command(librahost, "run", "--resume", "--state", state, wasm)
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("resume: %v\n%s", err, errb.String())
	}
	compareOutput(t, out.Bytes(), want)
}

// `librahost checkpoint` reaches a running instance through its state dir;
// after a SIGKILL the run resumes from that checkpoint.
func TestCheckpointCommand(t *testing.T) {
	t.Parallel()
	wasm := guest(t, "tests/testdata/timer")
	want := plainRun(t, wasm)
	dir := t.TempDir()
	state := filepath.Join(dir, "st")
	outPath := filepath.Join(dir, "out")
	f := appendTo(t, outPath)
	p := startProc(t, f, nil, "run", "--state", state, wasm)
	p.mustFile(t, outPath, "tick 2 ")
	stdout, stderr, code := lh(t, "checkpoint", "--state", state)
	if code != 0 || !strings.HasPrefix(stdout, "checkpoint 1 durable") {
		t.Fatalf("checkpoint: exit %d\n%s%s", code, stdout, stderr)
	}
	// Kill it once it has printed a tick after the checkpoint.
	ticks := strings.Count(string(readAll(t, outPath)), "tick ")
	p.mustFile(t, outPath, fmt.Sprintf("tick %d ", ticks))
	p.kill()
	ls, _, _ := lh(t, "ckpt", "ls", "--state", state)
	if !strings.Contains(ls, "\n1 ") {
		t.Fatalf("ckpt ls does not list epoch 1:\n%s", ls)
	}
	cmd := exec.Command(librahost, "run", "--resume", "--state", state, wasm)
	cmd.Stdout = f
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	compareOutput(t, readAll(t, outPath), want)
	_, stderr, code = lh(t, "checkpoint", "--state", state)
	if code != 1 {
		t.Fatalf("checkpoint with nothing running: exit %d", code)
	}
	oneLineError(t, stderr, "no librahost process is running")
}

// restore --epoch continues from an older checkpoint than the newest;
// the output is still exactly once.
func TestRestoreOlderEpoch(t *testing.T) {
	t.Parallel()
	wasm := guest(t, "tests/testdata/timer")
	want := plainRun(t, wasm)
	dir := t.TempDir()
	state := filepath.Join(dir, "st")
	outPath := filepath.Join(dir, "out")
	f := appendTo(t, outPath)
	p := startProc(t, f, nil, "run", "--state", state, "--checkpoint-every", "200ms", "--checkpoint-overhead", "off", wasm)
	p.mustDurable(t, 2)
	p.kill()
	ls, _, _ := lh(t, "ckpt", "ls", "--state", state)
	lines := strings.Split(strings.TrimSpace(ls), "\n")
	if len(lines) < 3 {
		t.Fatalf("want at least two checkpoints:\n%s", ls)
	}
	oldest := strings.Fields(lines[1])[0]
	cmd := exec.Command(librahost, "restore", "--state", state, "--epoch", oldest)
	cmd.Stdout = f
	var errb bytes.Buffer
	cmd.Stderr = &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("restore --epoch %s: %v\n%s", oldest, err, errb.Bytes())
	}
	compareOutput(t, readAll(t, outPath), want)
	insp, _, code := lh(t, "ckpt", "inspect", "--state", state, "--epoch", oldest)
	if code != 0 || !strings.Contains(insp, "verify:") || !strings.Contains(insp, "module digest:") {
		t.Fatalf("ckpt inspect: exit %d\n%s", code, insp)
	}
}

// mustStderr waits until the process has said text on stderr; it must
// not end first.
func (p *proc) mustStderr(t testing.TB, text string) {
	t.Helper()
	if !p.stderr.waitFor(func(s string) bool { return strings.Contains(s, text) }) {
		t.Fatalf("librahost ended (%v) before saying %q\nstderr:\n%s", p.wait(), text, p.stderr)
	}
}

// lastTick returns i of the last "tick i" line of out.
func lastTick(t *testing.T, out string) int {
	t.Helper()
	lines := strings.Split(strings.TrimSpace(out), "\n")
	i, err := strconv.Atoi(strings.TrimPrefix(lines[len(lines)-1], "tick "))
	if err != nil {
		t.Fatalf("stdout does not end with a tick:\n%s", out)
	}
	return i
}

// A second SIGTERM while the final checkpoint is written says that it is
// being finished and lets it finish; a third abandons it, and the run
// resumes from the checkpoint before. Either way the resumed run goes on
// from the last line printed. The checkpoints are held open by a failpoint
// until the test has sent its signals.
func TestSignalsDuringFinalCheckpoint(t *testing.T) {
	t.Parallel()
	wasm := guest(t, "tests/testdata/ticks")
	for _, signals := range []int{2, 3} {
		t.Run(fmt.Sprint(signals, " signals"), func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			state, gate := filepath.Join(dir, "st"), filepath.Join(dir, "gate")
			if err := os.WriteFile(gate, nil, 0o644); err != nil {
				t.Fatal(err)
			}
			p := startProc(t, nil, []string{"LIBRAHOST_FAILPOINTS=commit:tx=wait(" + gate + ")"},
				"run", "--state", state, "--checkpoint-every", "100ms", wasm)
			p.mustDurable(t, 1)
			p.mustStdout(t, "tick 0\n") // the first checkpoint can come before the first tick
			os.Remove(gate)             // the checkpoints from now on wait at their commit
			p.signal(syscall.SIGTERM)
			p.mustStderr(t, "stopping: taking a final checkpoint")
			p.signal(syscall.SIGTERM)
			p.mustStderr(t, "finishing the final checkpoint; press Ctrl-C again to abandon it")
			if signals == 3 {
				p.signal(syscall.SIGTERM)
				p.mustStderr(t, "final checkpoint abandoned")
			} else if err := os.WriteFile(gate, nil, 0o644); err != nil {
				t.Fatal(err)
			}
			p.wait()
			if code := p.cmd.ProcessState.ExitCode(); code != 143 {
				t.Fatalf("exit %d, want 143\n%s", code, p.stderr)
			}
			if signals == 2 && !strings.Contains(p.stderr.String(), "stopped after checkpoint") {
				t.Fatalf("the final checkpoint was not finished:\n%s", p.stderr)
			}
			want := fmt.Sprintf("tick %d\n", lastTick(t, p.stdout.String())+1)
			p = startProc(t, nil, nil, "run", "--resume", "--state", state, wasm)
			p.mustStdout(t, "\n")
			if got, _, _ := strings.Cut(p.stdout.String(), "\n"); got+"\n" != want {
				t.Fatalf("the resumed run printed %q first, want %q", got, want)
			}
		})
	}
}

// SIGTERM of a run without checkpoints exits 143, as a shell reports a
// process ended by SIGTERM.
func TestSigtermWithoutCheckpoints(t *testing.T) {
	t.Parallel()
	p := startProc(t, nil, nil, "run", guest(t, "tests/testdata/ticks"))
	p.mustStdout(t, "tick 0")
	p.signal(syscall.SIGTERM)
	p.wait()
	if code := p.cmd.ProcessState.ExitCode(); code != 143 {
		t.Fatalf("exit %d, want 143\n%s", code, p.stderr)
	}
}

// A checkpoint that fails when the guest has ended successfully (a disk
// full) is a warning: the guest's exit code stands. So is a run record
// that cannot be marked finished.
func TestFailedCheckpointAtEnd(t *testing.T) {
	t.Parallel()
	wasm := guest(t, "tests/testdata/ckptexit")
	for _, tc := range []struct {
		name, failpoints, warning string
		damage                    func(state string) error
	}{
		{"checkpoint", "commit:chunks=wait(GATE);commit:tx=error", "checkpoint 1 failed", nil},
		{"record", "commit:tx=wait(GATE)", "warning: the run ended but",
			func(state string) error { return os.Mkdir(filepath.Join(state, "run.json.tmp"), 0o755) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			state, gate := filepath.Join(dir, "st"), filepath.Join(dir, "gate")
			p := startProc(t, nil, []string{"LIBRAHOST_FAILPOINTS=" + strings.ReplaceAll(tc.failpoints, "GATE", gate)},
				"run", "--state", state, wasm)
			p.mustStdout(t, "done") // the guest has ended; its checkpoint waits at the gate
			if tc.damage != nil {
				if err := tc.damage(state); err != nil {
					t.Fatal(err)
				}
			}
			if err := os.WriteFile(gate, nil, 0o644); err != nil {
				t.Fatal(err)
			}
			p.wait()
			code, out, errs := p.cmd.ProcessState.ExitCode(), p.stdout.String(), p.stderr.String()
			if code != 0 || out != "before\ndone\n" {
				t.Fatalf("exit %d, stdout %q\n%s", code, out, errs)
			}
			if !strings.Contains(errs, tc.warning) || strings.Contains(errs, "librahost run:") {
				t.Fatalf("want a warning %q and no error, got:\n%s", tc.warning, errs)
			}
		})
	}
}
