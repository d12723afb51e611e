package tests

import (
	"regexp"
	"syscall"
	"testing"
)

// A host declared lost while it lives (stopped with SIGSTOP for longer
// than the failure timeout, as a frozen machine or a long cut) is told
// so once it runs again: it stops its part, and the job, recovered on the
// other hosts, finishes with the failure-free `run -n 6`'s output. It
// never rejoins the job's old incarnation.
func TestMultiHostFenced(t *testing.T) {
	t.Parallel()
	job := newHeldHeat(t, "400", "20")
	cluster, hs := startCluster(t, "a", "b", "c")
	sub := job.submit(t, cluster, hs, "--failure-timeout", lossTimeout, "--replicas", "1")
	waitHostLog(t, hs[2], regexp.MustCompile(`epoch 2 committed`), sub.done)
	if err := hs[2].cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	waitHostLog(t, hs[0], regexp.MustCompile(`recovered incarnation 1 in`), sub.done)
	if err := hs[2].cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	waitHostLog(t, hs[2], regexp.MustCompile(`this host was declared lost by the job's coordinator`), sub.done)
	job.release.open(t)
	<-sub.done
	if sub.err != nil {
		t.Fatalf("host c declared lost: submit: %v\n%s", sub.err, sub.errb.Bytes())
	}
	compareOutput(t, sub.out.Bytes(), job.want)
}
