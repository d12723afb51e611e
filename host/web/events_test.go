package web

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/librahost/librahost/host/node"
)

// fakeHosts is a Status that the test changes.
type fakeHosts struct {
	mu    sync.Mutex
	hosts []node.HostEntry
}

func (f *fakeHosts) status(context.Context) []node.HostEntry {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]node.HostEntry(nil), f.hosts...)
}

func (f *fakeHosts) set(jobs ...node.JobStatus) {
	f.mu.Lock()
	defer f.mu.Unlock()
	st := &node.HostStatus{Host: "a", Cluster: "c1", Listen: "127.0.0.1:7000", Started: time.Unix(1700000000, 0).UTC(), Jobs: jobs}
	f.hosts = []node.HostEntry{{Addr: st.Listen, Status: st}, {Addr: "127.0.0.1:7001", State: "down", Error: "host 127.0.0.1:7001: down: no answer"}}
}

func get(t *testing.T, url string) (*http.Response, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(b)
}

// TestAPIStatus: /api/status is the hosts as `status --json` has them.
func TestAPIStatus(t *testing.T) {
	f := &fakeHosts{}
	f.set(node.JobStatus{ID: "j1", State: "running", N: 2, Workers: []node.WorkerStatus{{Rank: 0, State: "running"}}})
	url := serve(t, Config{Status: f.status})
	resp, body := get(t, url+"/api/status")
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("%d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	var r Report
	if err := json.Unmarshal([]byte(body), &r); err != nil {
		t.Fatal(err)
	}
	if len(r.Hosts) != 2 || r.Hosts[0].Status.Jobs[0].ID != "j1" || r.Hosts[0].Status.Jobs[0].Workers[0].State != "running" ||
		r.Hosts[1].State != "down" || r.Hosts[1].Status != nil {
		t.Fatalf("report %s", body)
	}
}

// TestPageServed: the page, its script and style come from the binary,
// with a policy that allows no other script; unknown paths are 404.
func TestPageServed(t *testing.T) {
	url := serve(t, Config{})
	for path, want := range map[string]string{
		"/":                 `<script src="/static/app.js"`,
		"/static/app.js":    "new EventSource('/events')",
		"/static/style.css": "prefers-color-scheme: dark",
	} {
		resp, body := get(t, url+path)
		if resp.StatusCode != 200 || !strings.Contains(body, want) {
			t.Errorf("GET %s: %d, body without %q", path, resp.StatusCode, want)
		}
		if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'self'") {
			t.Errorf("GET %s: Content-Security-Policy %q", path, csp)
		}
	}
	for _, path := range []string{"/nothing", "/static/nothing.js", "/metrics"} {
		if resp, _ := get(t, url+path); resp.StatusCode != 404 {
			t.Errorf("GET %s: %d, want 404", path, resp.StatusCode)
		}
	}
}

// TestEventsFollowStatus: /events sends the status at once, then again
// each time it changes.
func TestEventsFollowStatus(t *testing.T) {
	f := &fakeHosts{}
	f.set()
	url := serve(t, Config{Status: f.status, Every: 10 * time.Millisecond})
	resp, err := http.Get(url + "/events")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("content type %q", ct)
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
	next := func() Report {
		t.Helper()
		event := ""
		for sc.Scan() {
			line := sc.Text()
			switch {
			case strings.HasPrefix(line, "event: "):
				event = line[7:]
			case strings.HasPrefix(line, "data: ") && event == "status":
				var r Report
				if err := json.Unmarshal([]byte(line[6:]), &r); err != nil {
					t.Fatalf("%v: %s", err, line)
				}
				return r
			}
		}
		t.Fatalf("the stream ended: %v", sc.Err())
		return Report{}
	}
	if r := next(); len(r.Hosts) != 2 || len(r.Hosts[0].Status.Jobs) != 0 {
		t.Fatalf("first event %+v", r)
	}
	f.set(node.JobStatus{ID: "j2", State: "running"})
	if r := next(); len(r.Hosts[0].Status.Jobs) != 1 || r.Hosts[0].Status.Jobs[0].ID != "j2" {
		t.Fatalf("second event %+v", r)
	}
	f.set(node.JobStatus{ID: "j2", State: "ended"})
	if r := next(); r.Hosts[0].Status.Jobs[0].State != "ended" {
		t.Fatalf("third event %+v", r)
	}
}
