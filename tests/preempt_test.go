package tests

import (
	"bytes"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// spinRounds is the spin guest's work: a few seconds, so that a test sees
// whether librahost acted while the guest computed or only after it ended.
const spinRounds = "200"

// With GOMAXPROCS=1 a guest that computes without calling the host once
// held the process's only P for as long as it ran: the SIGTERM was seen
// only after the guest had ended (and its final checkpoint was of the end),
// and so was `librahost checkpoint`. Now the checkpoint is taken and the
// run stops before the guest's end, with a final checkpoint, and the
// resumed run prints what one run prints.
func TestSigtermComputingGuest(t *testing.T) {
	t.Parallel()
	wasm := guest(t, "tests/testdata/spin")
	want := plainRun(t, wasm, spinRounds)
	state := filepath.Join(t.TempDir(), "st")
	var out bytes.Buffer
	p := startProc(t, &out, []string{"GOMAXPROCS=1"}, "run", "--state", state, wasm, "--", spinRounds)
	p.mustStdout(t, "computing")
	// The control socket answers too: a checkpoint while it computes.
	if stdout, stderr, code := lh(t, "checkpoint", "--state", state); code != 0 || !strings.HasPrefix(stdout, "checkpoint 1 durable") {
		p.kill()
		t.Fatalf("checkpoint: exit %d\n%s%s\nrun's stderr:\n%s", code, stdout, stderr, p.stderr)
	}
	p.signal(syscall.SIGTERM)
	err := p.wait()
	if code := p.cmd.ProcessState.ExitCode(); code != 143 {
		t.Fatalf("exit %d (%v), want 143\nstderr:\n%s", code, err, p.stderr)
	}
	if bytes.Contains(out.Bytes(), []byte("hash ")) {
		t.Fatalf("the guest ran to its end before the signal was handled:\n%s", out.String())
	}
	if !strings.Contains(p.stderr.String(), "--resume") || !durableLine.MatchString(p.stderr.String()) {
		t.Fatalf("no final checkpoint:\n%s", p.stderr)
	}
	var errb bytes.Buffer
	cmd := exec.Command(librahost, "run", "--resume", "--state", state, wasm, "--", spinRounds)
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("resume: %v\n%s", err, errb.String())
	}
	compareOutput(t, out.Bytes(), want)
}

// A host whose guests compute (two of them, GOMAXPROCS=1) answers status
// meanwhile, and says the job is running.
func TestHostStatusWhileComputing(t *testing.T) {
	t.Parallel()
	wasm := guest(t, "tests/testdata/spin")
	cluster := filepath.Join(t.TempDir(), "cluster")
	if _, stderr, code := lh(t, "cluster", "init", cluster, "--hosts", "a"); code != 0 {
		t.Fatal(stderr)
	}
	hs := startHostProcs(t, cluster, []string{"GOMAXPROCS=1"}, "a")
	sub := exec.Command(librahost, "submit", "--cluster", cluster, "--hosts", hs[0].addr, "-n", "2", wasm, "--", spinRounds)
	stdout := newOutWatch(nil)
	var stderr bytes.Buffer
	sub.Stdout, sub.Stderr = stdout, &stderr
	if err := sub.Start(); err != nil {
		t.Fatal(err)
	}
	var subErr error
	exited := make(chan struct{})
	go func() { subErr = sub.Wait(); stdout.close(); close(exited) }()
	defer func() { sub.Process.Kill(); <-exited }()
	if !stdout.waitFor(func(s string) bool { return strings.Count(s, "computing") == 2 }) {
		<-exited
		t.Fatalf("submit ended before both ranks computed: %v\n%s%s", subErr, stdout, stderr.String())
	}
	st, errs, code := lh(t, "status", "--cluster", cluster, "--hosts", hs[0].addr)
	if code != 0 || !strings.Contains(st, "1 running job(s)") {
		t.Fatalf("status while the guests compute: exit %d\n%s%s", code, st, errs)
	}
	<-exited
	if subErr != nil || strings.Count(stdout.String(), "hash ") != 2 {
		t.Fatalf("submit: %v\n%s%s", subErr, stdout, stderr.String())
	}
}
