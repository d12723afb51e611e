package tests

import (
	"bytes"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// waitHostLog waits until host h's log matches re and returns the
// matches; it fails the test if done is closed first (and the log still
// does not match).
func waitHostLog(t *testing.T, h *hostProc, re *regexp.Regexp, done <-chan struct{}) [][]string {
	t.Helper()
	m := waitHostLogOr(h, re, done)
	if m == nil {
		b, _ := os.ReadFile(h.stderr.Name())
		t.Fatalf("host %s never logged %q:\n%s", h.name, re, b)
	}
	return m
}

// bgSubmit is a `librahost submit` run in the background.
type bgSubmit struct {
	out, errb bytes.Buffer
	done      chan struct{} // closed when it has exited
	err       error         // once done is closed
}

// submitBg starts `librahost submit args...`; it is killed when the
// test ends.
func submitBg(t *testing.T, args ...string) *bgSubmit {
	t.Helper()
	s := &bgSubmit{done: make(chan struct{})}
	cmd := exec.Command(librahost, append([]string{"submit"}, args...)...)
	cmd.Stdout, cmd.Stderr = &s.out, &s.errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { s.err = cmd.Wait(); close(s.done) }()
	t.Cleanup(func() { cmd.Process.Kill(); <-s.done })
	return s
}

// A job of heat over three host processes, checkpointed every second
// with one replica of each rank, prints what `run -n 6` prints; each epoch
// is committed on every host, `librahost checkpoint --job` takes one at
// once, each host holds the checkpoints of its ranks and the replicas of
// the previous host's, and the protocol costs at most three control
// messages per host and epoch.
func TestMultiHostCheckpoints(t *testing.T) {
	t.Parallel()
	cluster, hs := startCluster(t, "a", "b", "c")
	wasm := guest(t, "samples/heat")
	args := []string{"-steps", "1500", "-every", "40"}
	want := jobRun(t, "6", wasm, args...)
	// No host is lost here: a loaded machine may keep one silent for
	// longer than the default 2 s.
	sub := submitBg(t, append([]string{"--cluster", cluster, "--hosts", hostList(hs), "-n", "6", "--failure-timeout", "15s",
		"--checkpoint-every", "1s", "--replicas", "1", wasm, "--"}, args...)...)
	done := sub.done

	// The first epoch committed on host b: ask for one more at once.
	waitHostLog(t, hs[1], regexp.MustCompile(`epoch 1 committed`), done)
	id := waitHostLog(t, hs[0], regexp.MustCompile(`job ([0-9a-f]+) from`), done)[0][1]
	ck, stderr, code := lh(t, "checkpoint", "--job", id, "--cluster", cluster, "--hosts", hostList(hs))
	if code != 0 || !regexp.MustCompile(`^checkpoint \d+ of job `+id+` committed\n$`).MatchString(ck) {
		t.Fatalf("checkpoint --job: exit %d: %q\n%s", code, ck, stderr)
	}
	<-done
	if sub.err != nil {
		t.Fatalf("submit: %v\n%s", sub.err, sub.errb.Bytes())
	}
	compareOutput(t, sub.out.Bytes(), want)

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

// The coordinator's host of a checkpointed job (host a, rank 0's)
// SIGKILLed after the second committed epoch (its --data wiped): the job
// stops with one line, and the surviving hosts keep its committed
// epochs, the dead host's ranks among them as replicas, for submit
// --resume (TestMultiHostCoordinatorResume). The loss of another host is
// recovered from (TestMultiHostRecovery). The submitter says so also when
// its own connection to the dead host goes idle (10 s) before the other
// hosts' failure timeout (15 s) ends.
func TestMultiHostCheckpointsHostKilled(t *testing.T) {
	t.Parallel()
	// Each host holds its own ranks and the replicas of the previous
	// host's: a 0,3 and c's 2,5; b 1,4 and a's; c 2,5 and b's.
	held := []string{"0,2,3,5", "0,1,3,4", "1,2,4,5"}
	for _, tc := range []struct {
		kill    int
		timeout string // --failure-timeout
		why     []string
	}{
		{0, lossTimeout, []string{"the coordinator's host h0 is lost: the job stops, its committed epochs kept"}},
		{0, "15s", []string{"the coordinator's host h0 is lost: the job stops, its committed epochs kept"}},
	} {
		cluster, hs := startCluster(t, "a", "b", "c")
		sub := submitBg(t, "--cluster", cluster, "--hosts", hostList(hs), "-n", "6", "--failure-timeout", tc.timeout,
			"--checkpoint-every", "1s", guest(t, "samples/heat"), "--", "-steps", "100000", "-every", "1000")
		// Epoch 2 is committed once the coordinator's host wrote its
		// record; the others write theirs on its COMMIT.
		for _, h := range hs {
			waitHostLog(t, h, regexp.MustCompile(`epoch 2 committed`), sub.done)
		}
		hs[tc.kill].lose(t)
		<-sub.done
		msg := strings.TrimSuffix(sub.errb.String(), "\n")
		for _, w := range tc.why {
			if sub.err == nil || strings.Contains(msg, "\n") || !strings.Contains(msg, w) {
				t.Fatalf("host %s killed: submit: %v\n%s", hs[tc.kill].name, sub.err, sub.errb.Bytes())
			}
		}
		for i, h := range hs {
			if i == tc.kill {
				continue
			}
			waitHostLog(t, h, regexp.MustCompile(`its checkpoints here are kept`), nil)
			ls, stderr, code := lh(t, "ckpt", "ls", "--data", h.data)
			lines := strings.Split(strings.TrimSpace(ls), "\n")
			if code != 0 || len(lines) < 4 {
				t.Fatalf("host %s: ckpt ls: exit %d\n%s%s", h.name, code, ls, stderr)
			}
			if f := strings.Fields(lines[len(lines)-1]); len(f) < 6 || f[4] != held[i] {
				t.Fatalf("host %s: the newest epoch should hold ranks %s:\n%s", h.name, held[i], ls)
			}
		}
	}
}
