package tests

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"testing"
)

// A job over three host processes loses host c (SIGKILLed after its
// second committed epoch, its --data wiped) while `attach` follows it:
// attach prints the job's output whole, each byte once, as the submitter
// does, says in one line that what c had not sent of its ranks 2 and 5 is
// missing unless the job recovers them, and exits with the job's code
// (0). Once the job has ended, `logs` with c still down prints what a
// and b keep (here the whole output: rank 0 prints it) and says in one
// line that the output c keeps of ranks 2 and 5 is missing, and why.
func TestAttachLogsHostLost(t *testing.T) {
	t.Parallel()
	j := startHeldJob(t)
	hs := j.hosts
	hosts := []string{j.id, "--cluster", j.cluster, "--hosts", hostList(hs)}
	dir := t.TempDir()
	attach := exec.Command(librahost, append([]string{"attach"}, hosts...)...)
	out, err := os.Create(filepath.Join(dir, "attach.out"))
	if err != nil {
		t.Fatal(err)
	}
	errf, err := os.Create(filepath.Join(dir, "attach.err"))
	if err != nil {
		t.Fatal(err)
	}
	attach.Stdout, attach.Stderr = out, errf
	if err := attach.Start(); err != nil {
		t.Fatal(err)
	}
	attached := make(chan struct{})
	var attachErr error
	go func() { attachErr = attach.Wait(); close(attached) }()
	t.Cleanup(func() { attach.Process.Kill(); <-attached })

	// attach prints once every host answered: it follows c too.
	waitHostLog(t, &hostProc{name: "attach's output", stderr: out}, regexp.MustCompile(`step`), attached)
	waitHostLog(t, hs[2], regexp.MustCompile(`epoch 2 committed`), j.sub.done)
	hs[2].lose(t)
	waitHostLog(t, hs[0], regexp.MustCompile(`recovered incarnation 1 in \d+ ms`), j.sub.done)
	j.release.open(t)
	<-j.sub.done
	if j.sub.err != nil {
		t.Fatalf("host c lost: submit: %v\n%s", j.sub.err, j.sub.errb.Bytes())
	}
	<-attached
	got, _ := os.ReadFile(out.Name())
	note, _ := os.ReadFile(errf.Name())
	if attachErr != nil {
		t.Fatalf("attach: %v\n%s", attachErr, note)
	}
	compareOutput(t, got, j.sub.out.Bytes())
	if !regexp.MustCompile(`^librahost: job ` + j.id + `: the output of ranks 2, 5 that host c had not sent yet is missing unless the job recovers them on another host: [^\n]+\n$`).Match(note) {
		t.Fatalf("attach said %q", note)
	}

	logs, stderr, code := lh(t, append([]string{"logs"}, hosts...)...)
	if code != 0 {
		t.Fatalf("logs with host c down: exit %d: %s", code, stderr)
	}
	compareOutput(t, []byte(logs), j.sub.out.Bytes())
	if !regexp.MustCompile(`^librahost: job ` + j.id + `: the output host c keeps of ranks 2, 5 is missing \(what the other hosts keep is printed\): host ` +
		regexp.QuoteMeta(hs[2].addr) + `: down: [^\n]+\n$`).MatchString(stderr) {
		t.Fatalf("logs said %q", stderr)
	}
}
