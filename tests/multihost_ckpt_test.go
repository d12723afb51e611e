package tests

import (
	"bytes"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// waitHostLog waits until host h's log matches re and returns the
// matches; it fails the test if done is closed first (and the log still
// does not match).
func waitHostLog(t *testing.T, h *hostProc, re *regexp.Regexp, done <-chan struct{}) [][]string {
	t.Helper()
	for {
		b, _ := os.ReadFile(h.stderr.Name())
		if m := re.FindAllStringSubmatch(string(b), -1); m != nil {
			return m
		}
		select {
		case <-done:
			if m := re.FindAllStringSubmatch(string(b), -1); m != nil {
				return m
			}
			t.Fatalf("host %s never logged %q:\n%s", h.name, re, b)
		case <-time.After(10 * time.Millisecond): // polls the log file
		}
	}
}

// A job of heat over three host processes, checkpointed every second
// with one replica of each rank, prints what `run -n 6` prints; each epoch
// is committed on every host, `librahost checkpoint --job` takes one at
// once, each host holds the checkpoints of its ranks and the replicas of
// the previous host's, and the protocol costs at most three control
// messages per host and epoch.
func TestMultiHostCheckpoints(t *testing.T) {
	cluster := t.TempDir() + "/cluster"
	if _, stderr, code := lh(t, "cluster", "init", cluster, "--hosts", "a b c"); code != 0 {
		t.Fatal(stderr)
	}
	hs := startHostProcs(t, cluster, nil, "a", "b", "c")
	wasm := guest(t, "samples/heat")
	args := []string{"-steps", "1500", "-every", "40"}
	want := jobRun(t, "6", wasm, args...)

	var out, errb bytes.Buffer
	sub := exec.Command(librahost, append([]string{"submit", "--cluster", cluster, "--hosts", hostList(hs), "-n", "6",
		"--checkpoint-every", "1s", "--replicas", "1", wasm, "--"}, args...)...)
	sub.Stdout, sub.Stderr = &out, &errb
	if err := sub.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	var subErr error
	go func() { subErr = sub.Wait(); close(done) }()
	t.Cleanup(func() { sub.Process.Kill(); <-done })

	// The first epoch committed on host b: ask for one more at once.
	waitHostLog(t, hs[1], regexp.MustCompile(`epoch 1 committed`), done)
	id := waitHostLog(t, hs[0], regexp.MustCompile(`job ([0-9a-f]+) from`), done)[0][1]
	ck, stderr, code := lh(t, "checkpoint", "--job", id, "--cluster", cluster, "--hosts", hostList(hs))
	if code != 0 || !regexp.MustCompile(`^checkpoint \d+ of job `+id+` committed\n$`).MatchString(ck) {
		t.Fatalf("checkpoint --job: exit %d: %q\n%s", code, ck, stderr)
	}
	<-done
	if subErr != nil {
		t.Fatalf("submit: %v\n%s", subErr, errb.Bytes())
	}
	compareOutput(t, out.Bytes(), want)

	held := map[string]string{"a": "0,2,3,5", "b": "0,1,3,4", "c": "1,2,4,5"} // its ranks and the previous host's
	for _, h := range hs {
		ended := make(chan struct{})
		close(ended) // the job has ended: the lines are there or never come
		waitHostLog(t, h, regexp.MustCompile(`job `+id+`: its checkpoints here are kept`), nil)
		if n := len(waitHostLog(t, h, regexp.MustCompile(`job `+id+`: librahost: epoch \d+ committed`), ended)); n < 2 {
			t.Fatalf("host %s committed %d epochs", h.name, n)
		}
		m := waitHostLog(t, h, regexp.MustCompile(`control messages: (\d+) sent, (\d+) received, (\d+) rounds`), ended)[0]
		sent, _ := strconv.Atoi(m[1])
		recvd, _ := strconv.Atoi(m[2])
		rounds, _ := strconv.Atoi(m[3])
		if rounds < 2 || sent+recvd > 3*rounds {
			t.Fatalf("host %s: %d control messages sent and %d received over %d rounds: want at most 3 a round", h.name, sent, recvd, rounds)
		}
		ls, stderr, code := lh(t, "ckpt", "ls", "--data", h.data)
		lines := strings.Split(strings.TrimSpace(ls), "\n")
		if code != 0 || len(lines) < 3 || lines[0] != "job "+id {
			t.Fatalf("host %s: ckpt ls: exit %d\n%s%s", h.name, code, ls, stderr)
		}
		if f := strings.Fields(lines[len(lines)-1]); len(f) < 6 || f[4] != held[h.name] || f[3] != "6" {
			t.Fatalf("host %s: the newest epoch should hold ranks %s:\n%s", h.name, held[h.name], ls)
		}
	}
}
