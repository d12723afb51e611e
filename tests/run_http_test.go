package tests

import (
	"encoding/json"
	"io"
	"net/http"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"

	"github.com/librahost/librahost/host/job"
	"github.com/librahost/librahost/host/metrics/metricstest"
	"github.com/librahost/librahost/host/web"
)

var httpLine = regexp.MustCompile(`(?m)^librahost: http on (http://\S+/)$`)

// waitHTTP waits for the line of `run --http` saying its URL.
func (p *proc) waitHTTP(t *testing.T) string {
	t.Helper()
	var url string
	if !p.stderr.waitFor(func(s string) bool {
		m := httpLine.FindStringSubmatch(s)
		if m != nil {
			url = m[1]
		}
		return m != nil
	}) {
		t.Fatalf("librahost ended (%v) before saying its HTTP address:\n%s", p.wait(), p.stderr)
	}
	return url
}

// scrape gets url's /metrics. /metrics answers from a cache for 250 ms
// per pair of Accept and Accept-Encoding headers: each scrape of a test
// asks with an Accept of its own, so that it reads the metrics anew.
func scrape(t *testing.T, url, accept string) metricstest.Families {
	t.Helper()
	req, _ := http.NewRequest("GET", url+"metrics", nil)
	req.Header.Set("Accept", accept)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	return metricstest.Parse(t, resp)
}

// `librahost run --http 127.0.0.1:0` says its URL in one line and serves
// the job's metrics there, which move when a checkpoint commits, and its
// status (its ranks, its checkpoints) at /api/status; a bad address is
// one line, before anything runs.
func TestRunHTTP(t *testing.T) {
	t.Parallel()
	state := filepath.Join(t.TempDir(), "st")
	p := startProc(t, nil, nil, "run", "-n", "2", "--state", state, "--http", "127.0.0.1:0", guest(t, "samples/heat"),
		"--", "-grid", "64", "-steps", "1000000000", "-every", "2000")
	url := p.waitHTTP(t)
	if !strings.HasPrefix(url, "http://127.0.0.1:") {
		t.Fatalf("URL %q", url)
	}
	f := scrape(t, url, "text/plain")
	for _, name := range []string{"librahost_checkpoint_commit_seconds", "librahost_checkpoint_size_bytes"} {
		if v := f.Must(t, name); v != 0 {
			t.Fatalf("%s = %v before any checkpoint", name, v)
		}
	}
	if v := f.Must(t, "librahost_checkpoints_total", "outcome", "committed"); v != 0 {
		t.Fatalf("%v checkpoints committed before any", v)
	}
	// The ranks run once the first line is out; `librahost checkpoint`
	// returns once the checkpoint is committed.
	p.mustStdout(t, "step ")
	if out, stderr, code := lh(t, "checkpoint", "--state", state); code != 0 || !strings.HasPrefix(out, "checkpoint 1 durable") {
		t.Fatalf("checkpoint: exit %d\n%s%s", code, out, stderr)
	}
	f = scrape(t, url, "text/plain; version=0.0.4")
	for _, m := range []struct {
		name   string
		labels []string
	}{
		{"librahost_checkpoints_total", []string{"outcome", "committed"}},
		{"librahost_checkpoint_pause_seconds", nil},
		{"librahost_checkpoint_held_seconds", nil},
		{"librahost_checkpoint_durable_seconds", nil},
		{"librahost_checkpoint_commit_seconds", nil},
		{"librahost_checkpoint_size_bytes", nil},
		{"librahost_checkpoint_incremental_bytes", nil},
	} {
		if v := f.Must(t, m.name, m.labels...); v != 1 {
			t.Errorf("%s %v = %v after a checkpoint, want 1", m.name, m.labels, v)
		}
	}
	for _, name := range []string{"librahost_store_size_bytes", "librahost_guest_memory_bytes", "librahost_checkpoint_written_bytes_total"} {
		if v := f.Must(t, name); v <= 0 {
			t.Errorf("%s = %v after a checkpoint, want more than 0", name, v)
		}
	}

	r, b := getReport(t, url)
	if len(r.Hosts) != 1 || r.Hosts[0].Status == nil || len(r.Hosts[0].Status.Jobs) != 1 {
		t.Fatalf("report: %s", b)
	}
	j := r.Hosts[0].Status.Jobs[0]
	if j.State != "running" || j.N != 2 || len(j.Workers) != 2 || j.Workers[1].State != "running" {
		t.Fatalf("job: %s", b)
	}
	if len(j.Checkpoints) != 1 || j.Checkpoints[0].Status != job.CheckpointCommitted || j.Checkpoints[0].Acked != 2 || j.Checkpoints[0].Of != 2 {
		t.Fatalf("checkpoints: %s", b)
	}

	p.signal(syscall.SIGTERM)
	if p.wait(); p.cmd.ProcessState.ExitCode() != 143 {
		t.Fatalf("exit %d after SIGTERM:\n%s", p.cmd.ProcessState.ExitCode(), p.stderr)
	}

	for _, addr := range []string{"nonsense", "127.0.0.1:http", "127.0.0.1:70000"} {
		_, stderr, code := lh(t, "run", "--http", addr, guest(t, "samples/heat"))
		if code != 1 {
			t.Fatalf("--http %s: exit %d: %s", addr, code, stderr)
		}
		oneLineError(t, stderr, "--http "+addr)
	}
}

// getReport gets url's /api/status, and returns it decoded and as it came.
func getReport(t *testing.T, url string) (web.Report, []byte) {
	t.Helper()
	resp, err := http.Get(url + "api/status")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var r web.Report
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatalf("%v: %s", err, b)
	}
	return r, b
}
