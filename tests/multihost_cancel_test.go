package tests

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/librahost/librahost/host/node"
)

// submitProc is a `librahost submit` process whose job has printed its
// first line.
type submitProc struct {
	cmd    *exec.Cmd
	stderr bytes.Buffer
	done   chan struct{} // closed when the process has exited
}

// startSubmit submits wasm to hosts and returns once the job printed its
// first line; the rest of its output is read and dropped.
func startSubmit(t *testing.T, cluster, hosts string, args ...string) *submitProc {
	t.Helper()
	s := &submitProc{done: make(chan struct{})}
	s.cmd = exec.Command(librahost, append([]string{"submit", "--cluster", cluster, "--hosts", hosts}, args...)...)
	s.cmd.Stderr = &s.stderr
	out, err := s.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		s.cmd.Process.Kill()
		<-s.done
	})
	r := bufio.NewReader(out)
	line, err := r.ReadString('\n')
	go func() {
		io.Copy(io.Discard, r)
		s.cmd.Wait()
		close(s.done)
	}()
	if err != nil || !strings.Contains(line, "started") {
		<-s.done
		t.Fatalf("the job's first line: %q (%v)\n%s", line, err, s.stderr.String())
	}
	return s
}

// startCluster makes a cluster of the hosts named and starts a `librahost
// host` process for each.
func startCluster(t *testing.T, names ...string) (string, []*hostProc) {
	t.Helper()
	return startClusterEnv(t, nil, names...)
}

// startClusterEnv is startCluster with env added to each host's
// environment.
func startClusterEnv(t *testing.T, env []string, names ...string) (string, []*hostProc) {
	t.Helper()
	cluster := filepath.Join(t.TempDir(), "cluster")
	if _, stderr, code := lh(t, "cluster", "init", cluster, "--hosts", strings.Join(names, " ")); code != 0 {
		t.Fatal(stderr)
	}
	return cluster, startHostProcs(t, cluster, env, names...)
}

// hostReport is one host in `status --json`.
type hostReport struct {
	Addr   string           `json:"addr"`
	State  string           `json:"state"`
	Error  string           `json:"error"`
	Status *node.HostStatus `json:"status"`
}

func statusJSON(t *testing.T, cluster, hosts string) []hostReport {
	t.Helper()
	out, stderr, code := lh(t, "status", "--json", "--cluster", cluster, "--hosts", hosts)
	var rs []hostReport
	if err := json.Unmarshal([]byte(out), &rs); err != nil || code != 0 {
		t.Fatalf("status --json: exit %d, %v\n%s%s", code, err, out, stderr)
	}
	return rs
}

// waitJobEnded polls status until every host reports its part of the
// job as state, with no worker left running, or the deadline passes.
func waitJobEnded(t *testing.T, cluster, hosts, state string, deadline time.Duration) []hostReport {
	t.Helper()
	end := time.Now().Add(deadline)
	for {
		rs := statusJSON(t, cluster, hosts)
		ended := 0
		for _, r := range rs {
			for _, j := range r.Status.Jobs {
				running := false
				for _, w := range j.Workers {
					running = running || w.State == "running" || w.State == "starting"
				}
				if j.State == state && !running {
					ended++
				}
			}
		}
		if ended == len(rs) {
			return rs
		}
		if time.Now().After(end) {
			b, _ := json.MarshalIndent(rs, "", "  ")
			t.Fatalf("the job did not end as %s on every host within %v:\n%s", state, deadline, b)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// A submitter killed with SIGKILL leaves no job behind: every host notices
// that its control connection is gone and cancels its part, stopping its
// workers.
func TestMultiHostSubmitterKilled(t *testing.T) {
	t.Parallel()
	cluster, hs := startCluster(t, "a", "b")
	hosts := hostList(hs)
	s := startSubmit(t, cluster, hosts, "-n", "4", guest(t, "tests/testdata/longjob"), "--", "600")
	s.cmd.Process.Kill()
	<-s.done
	// The hosts notice within their control connections' idle timeout.
	rs := waitJobEnded(t, cluster, hosts, "cancelled", 2*time.Minute)
	for _, r := range rs {
		if ws := r.Status.Jobs[0].Workers; len(ws) != 2 || ws[0].State != "stopped" || ws[1].State != "stopped" {
			t.Fatalf("host %s: workers %+v", r.Status.Host, ws)
		}
	}
	for _, h := range hs {
		b, _ := os.ReadFile(h.stderr.Name())
		if !strings.Contains(string(b), "cancelled: the submitter went away") {
			t.Fatalf("host %s does not say why it cancelled the job:\n%s", h.name, b)
		}
	}
}

// `librahost cancel` stops a job on every host; its submitter says in one
// line that the job was cancelled, and a second cancel finds it ended.
func TestMultiHostCancel(t *testing.T) {
	t.Parallel()
	cluster, hs := startCluster(t, "a", "b")
	hosts := hostList(hs)
	s := startSubmit(t, cluster, hosts, "-n", "3", guest(t, "tests/testdata/longjob"), "--", "600")
	rs := statusJSON(t, cluster, hosts)
	if len(rs[0].Status.Jobs) != 1 {
		t.Fatalf("host a's jobs: %+v", rs[0].Status.Jobs)
	}
	id := rs[0].Status.Jobs[0].ID

	out, stderr, code := lh(t, "cancel", "--job", id, "--cluster", cluster, "--hosts", hosts)
	if code != 0 || stderr != "" || out != hs[0].addr+": job "+id+" cancelled: rank 0 stopped, rank 2 stopped\n"+hs[1].addr+": job "+id+" cancelled: rank 1 stopped\n" {
		t.Fatalf("cancel: exit %d\n%s%s", code, out, stderr)
	}
	<-s.done
	if code := s.cmd.ProcessState.ExitCode(); code != 1 {
		t.Fatalf("submit: exit %d\n%s", code, s.stderr.String())
	}
	oneLineError(t, s.stderr.String(), "cancelled by `librahost cancel` from host ")
	waitJobEnded(t, cluster, hosts, "cancelled", time.Minute)

	// The job's ID may be given as the argument, as logs and attach take it.
	out, _, code = lh(t, "cancel", id, "--cluster", cluster, "--hosts", hosts)
	if code != 0 || strings.Count(out, "job "+id+" cancelled") != 2 {
		t.Fatalf("second cancel: exit %d\n%s", code, out)
	}
	out, stderr, code = lh(t, "cancel", "--job", "nosuchjob", "--cluster", cluster, "--hosts", hosts)
	if code != 1 || strings.Count(out, ": no job nosuchjob\n") != 2 {
		t.Fatalf("cancel of no job: exit %d\n%s", code, out)
	}
	oneLineError(t, stderr, "no job nosuchjob on any of these hosts")
	// Two IDs, or one twice, is a usage error.
	for _, args := range [][]string{{id, "other"}, {"--job", id, id}} {
		_, stderr, code = lh(t, append([]string{"cancel", "--cluster", cluster, "--hosts", hosts}, args...)...)
		if code != 2 || !strings.HasPrefix(stderr, "usage: librahost cancel JOB") {
			t.Fatalf("cancel %q: exit %d\n%s", args, code, stderr)
		}
	}
}
