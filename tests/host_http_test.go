package tests

import (
	"net/http"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/librahost/librahost/host/job"
	"github.com/librahost/librahost/host/metrics/metricstest"
)

// `librahost host --http 127.0.0.1:0` says its HTTP address on its first
// line and serves there, after a job over two hosts, its metrics (the job
// ended, its messages counted) and its dashboard's report (both hosts,
// the job ended on each); an address it cannot listen on is one line.
func TestHostHTTP(t *testing.T) {
	t.Parallel()
	cluster := filepath.Join(t.TempDir(), "cluster")
	if _, stderr, code := lh(t, "cluster", "init", cluster, "--hosts", "a b"); code != 0 {
		t.Fatal(stderr)
	}
	hs := startHostProcsArgs(t, cluster, nil, []string{"--http", "127.0.0.1:0"}, "a", "b")
	if !strings.HasPrefix(hs[0].http, "http://127.0.0.1:") {
		t.Fatalf("host a's HTTP address: %q", hs[0].http)
	}
	out, stderr, code := lh(t, "submit", "--cluster", cluster, "--hosts", hostList(hs), "-n", "2", guest(t, "samples/ring"), "--", "-laps", "5")
	if code != 0 {
		t.Fatalf("exit %d: %s%s", code, out, stderr)
	}

	resp, err := http.Get(hs[0].http + "metrics")
	if err != nil {
		t.Fatal(err)
	}
	f := metricstest.Parse(t, resp)
	resp.Body.Close()
	if v := f.Must(t, "librahost_jobs_ended_total", "state", "ended"); v != 1 {
		t.Errorf("jobs ended: %v, want 1", v)
	}
	if v := f.Must(t, "librahost_link_messages_sent_total"); v < 5 {
		t.Errorf("messages sent to host b: %v, want at least a lap's worth", v)
	}

	r, b := getReport(t, hs[0].http)
	if len(r.Hosts) != 2 || r.Hosts[0].Status == nil || r.Hosts[1].Status == nil ||
		r.Hosts[0].Status.Host != "a" || r.Hosts[1].Status.Host != "b" {
		t.Fatalf("report: %s", b)
	}
	for _, h := range r.Hosts {
		if len(h.Status.Jobs) != 1 || h.Status.Jobs[0].State != "ended" {
			t.Fatalf("host %s: %+v", h.Status.Host, h.Status.Jobs)
		}
	}

	_, stderr, code = lh(t, "host", "--listen", "127.0.0.1:0", "--data", t.TempDir(), "--cluster", cluster, "--name", "a", "--http", "nonsense")
	if code != 1 {
		t.Fatalf("--http nonsense: exit %d: %s", code, stderr)
	}
	oneLineError(t, stderr, "--http nonsense")
}

// A host daemon's /metrics and /api/status carry the checkpoints of a job
// checkpointed over two hosts: once host a says an epoch is committed,
// its metrics have counted it and its status lists it, acknowledged by
// its rank.
func TestHostHTTPCheckpoints(t *testing.T) {
	t.Parallel()
	cluster := filepath.Join(t.TempDir(), "cluster")
	if _, stderr, code := lh(t, "cluster", "init", cluster, "--hosts", "a b"); code != 0 {
		t.Fatal(stderr)
	}
	hs := startHostProcsArgs(t, cluster, nil, []string{"--http", "127.0.0.1:0"}, "a", "b")
	// No host is lost here: a loaded machine may keep one silent for
	// longer than the default 2 s.
	sub := exec.Command(librahost, "submit", "--cluster", cluster, "--hosts", hostList(hs), "-n", "2", "--failure-timeout", "15s",
		"--checkpoint-every", "300ms", guest(t, "samples/heat"), "--", "-grid", "64", "-steps", "1000000000", "-every", "100000")
	if err := sub.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { sub.Wait(); close(done) }()
	t.Cleanup(func() { sub.Process.Kill(); <-done })

	m := waitHostLog(t, hs[0], regexp.MustCompile(`job ([0-9a-f]+): librahost: epoch (\d+) committed`), done)[0]
	id, epoch := m[1], m[2]
	f := metricstest.Parse(t, get(t, hs[0].http+"metrics"))
	for _, name := range []string{"librahost_checkpoint_commit_seconds", "librahost_checkpoint_size_bytes", "librahost_control_messages_total"} {
		if v, _ := f.Value(name); v < 1 {
			t.Errorf("%s = %v once an epoch is committed", name, v)
		}
	}
	if v := f.Must(t, "librahost_checkpoints_total", "outcome", "committed"); v < 1 {
		t.Errorf("%v checkpoints committed once an epoch is", v)
	}
	// Each host holds a replica of the other's rank.
	for _, dir := range []string{"sent", "received"} {
		if v := f.Must(t, "librahost_replication_bytes_total", "direction", dir); v <= 0 {
			t.Errorf("replication bytes %s: %v once an epoch is committed", dir, v)
		}
	}
	r, b := getReport(t, hs[0].http)
	var found bool
	for _, j := range r.Hosts[0].Status.Jobs {
		for _, c := range j.Checkpoints {
			if j.ID == id && strconv.FormatUint(c.Epoch, 10) == epoch {
				found = c.Status == job.CheckpointCommitted && c.Acked == 1 && c.Of == 1 && c.Size > 0
			}
		}
	}
	if !found {
		t.Fatalf("host a's status does not list epoch %s of job %s committed by its rank:\n%s", epoch, id, b)
	}
}

// get gets url, failing t if it cannot.
func get(t *testing.T, url string) *http.Response {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}
