package tests

import (
	"bytes"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// SIGTERM takes a final checkpoint and exits; --resume continues, and the
// two runs together print what one uninterrupted run prints.
func TestSigtermCheckpointAndResume(t *testing.T) {
	wasm := guest(t, "tests/testdata/timer")
	want := plainRun(t, wasm)
	dir := t.TempDir()
	state := filepath.Join(dir, "st")
	var out, errb bytes.Buffer
	cmd := exec.Command(librahost, "run", "--state", state, wasm)
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waitEpoch(t, state, 0)
	time.Sleep(500 * time.Millisecond)
	cmd.Process.Signal(syscall.SIGTERM)
	err := cmd.Wait()
	if cmd.ProcessState.ExitCode() != 143 {
		t.Fatalf("exit %v, want 143\n%s", err, errb.String())
	}
	if !strings.Contains(errb.String(), "--resume") {
		t.Fatalf("stderr does not say how to resume:\n%s", errb.String())
	}
	cmd = exec.Command(librahost, "run", "--resume", "--state", state, wasm)
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("resume: %v\n%s", err, errb.String())
	}
	compareOutput(t, out.Bytes(), want)
}

// `librahost checkpoint` reaches a running instance through its state dir;
// after a SIGKILL the run resumes from that checkpoint.
func TestCheckpointCommand(t *testing.T) {
	wasm := guest(t, "tests/testdata/timer")
	want := plainRun(t, wasm)
	dir := t.TempDir()
	state := filepath.Join(dir, "st")
	outPath := filepath.Join(dir, "out")
	f := appendTo(t, outPath)
	cmd := exec.Command(librahost, "run", "--state", state, wasm)
	cmd.Stdout = f
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waitEpoch(t, state, 0)
	time.Sleep(300 * time.Millisecond)
	stdout, stderr, code := lh(t, "checkpoint", "--state", state)
	if code != 0 || !strings.HasPrefix(stdout, "checkpoint 1 durable") {
		t.Fatalf("checkpoint: exit %d\n%s%s", code, stdout, stderr)
	}
	time.Sleep(500 * time.Millisecond)
	cmd.Process.Kill()
	cmd.Wait()
	ls, _, _ := lh(t, "ckpt", "ls", "--state", state)
	if !strings.Contains(ls, "\n1 ") {
		t.Fatalf("ckpt ls does not list epoch 1:\n%s", ls)
	}
	cmd = exec.Command(librahost, "run", "--resume", "--state", state, wasm)
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
	wasm := guest(t, "tests/testdata/timer")
	want := plainRun(t, wasm)
	dir := t.TempDir()
	state := filepath.Join(dir, "st")
	outPath := filepath.Join(dir, "out")
	f := appendTo(t, outPath)
	cmd := exec.Command(librahost, "run", "--state", state, "--checkpoint-every", "200ms", wasm)
	cmd.Stdout = f
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waitEpoch(t, state, 2)
	cmd.Process.Kill()
	cmd.Wait()
	ls, _, _ := lh(t, "ckpt", "ls", "--state", state)
	lines := strings.Split(strings.TrimSpace(ls), "\n")
	if len(lines) < 3 {
		t.Fatalf("want at least two checkpoints:\n%s", ls)
	}
	oldest := strings.Fields(lines[1])[0]
	cmd = exec.Command(librahost, "restore", "--state", state, "--epoch", oldest)
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
