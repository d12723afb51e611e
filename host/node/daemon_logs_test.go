package node

import (
	"context"
	"strings"
	"testing"
	"time"

	driver "github.com/librahost/librahost/host/job"
	"github.com/librahost/librahost/host/jobrec"
)

// A LOGS that comes while a job is listed here but its output log not
// yet started (a resumed job, between the two) waits for it: it read the
// finished log of the job's earlier run and ended at once, so `attach`
// took the host for done and missed its later output.
func TestLogsWaitForOutputLog(t *testing.T) {
	d, _, _ := listenAt(t, Config{Name: "a", DataDir: t.TempDir()})
	const id = "resumed"
	// The earlier run's record and output.
	if err := d.recs.Put(jobrec.Record{ID: id, Module: "m.wasm", N: 1, State: stateEnded, Started: time.Now(),
		Workers: []jobrec.Worker{{Rank: 0, State: workerExited}}}); err != nil {
		t.Fatal(err)
	}
	old, err := d.recs.Create(id)
	if err != nil {
		t.Fatal(err)
	}
	if err := old.Append(0, 1, 0, []byte("before\n")); err != nil {
		t.Fatal(err)
	}
	if err := d.recs.Finish(id); err != nil {
		t.Fatal(err)
	}
	// The job again, listed, its output log not started.
	j := &job{id: id, module: "m.wasm", n: 1, placement: []string{"a"}, ranks: []int{0}, started: time.Now(),
		report: driver.NewStatus(0), state: stateRunning, done: make(chan struct{}), logged: make(chan struct{}),
		ws: []WorkerStatus{{Rank: 0, State: workerRunning}}}
	d.mu.Lock()
	d.jobs[id] = j
	d.mu.Unlock()

	waiting := make(chan struct{})
	d.testLogsWait = func() { close(waiting) }
	lc, out, errOut := logsCfg([]string{d.Addr().String()}, id)
	lc.Follow, lc.Prefix = true, false
	ended := make(chan error, 1)
	go func() {
		_, err := Logs(context.Background(), lc)
		ended <- err
	}()
	select {
	case <-waiting:
	case err := <-ended:
		t.Fatalf("logs of a job whose output log was not started yet ended at once (%v), printing %q", err, out.String())
	}
	d.recordStart(j)
	if err := j.log.Append(0, 1, 0, []byte("after\n")); err != nil {
		t.Fatal(err)
	}
	j.setState(stateEnded)
	d.recordEnd(j)
	if err := <-ended; err != nil {
		t.Fatalf("logs: %v\n%s", err, errOut.String())
	}
	if got := out.String(); got != "after\n" {
		t.Fatalf("logs printed %q, want the resumed job's %q%s", got, "after\n", strings.TrimSpace("\n"+errOut.String()))
	}
}
