package node

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/librahost/librahost/host/jobrec"
)

// listenAt starts a daemon of cfg (on loopback, in the test cluster)
// until the test ends or stop is called; done is closed once it has
// closed.
func listenAt(t *testing.T, cfg Config) (d *Daemon, stop context.CancelFunc, done <-chan struct{}) {
	t.Helper()
	cfg.Listen, cfg.ClusterDir = "127.0.0.1:0", filepath.Join(testDir, "cluster")
	if cfg.Log == nil {
		cfg.Log = &syncBuffer{}
	}
	d, err := Listen(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	closed := make(chan struct{})
	go func() {
		defer close(closed)
		if err := d.Serve(ctx); err != nil {
			fmt.Fprintf(cfg.Log, "serve: %v\n", err)
		}
	}()
	t.Cleanup(func() {
		cancel()
		<-closed
	})
	return d, cancel, closed
}

// A daemon restarted on its --data lists the job it ran, with its end
// (exit code, when); a job its records show running when it starts ran
// when it stopped: it is listed failed, saying so, its ranks stopped. A
// second daemon on the same --data is refused in one line.
func TestRecordsAfterRestart(t *testing.T) {
	exit3 := testGuest(t, "../../tests/testdata/exit3.c")
	data := filepath.Join(t.TempDir(), "a")
	d, stop, closed := listenAt(t, Config{Name: "a", DataDir: data})
	cfg, out, _ := submitCfg([]string{d.Addr().String()}, 1, exit3)
	if code, err := Submit(context.Background(), cfg); code != 3 || err != nil {
		t.Fatalf("exit %d, %v", code, err)
	}
	before := waitEnded(t, d)
	stop()
	<-closed
	if out.String() != "exiting with 3\n" || len(before) != 1 {
		t.Fatalf("stdout %q, jobs %+v", out, before)
	}

	recs, err := jobrec.Open(jobrec.Config{Dir: data})
	if err != nil {
		t.Fatal(err)
	}
	started := time.Now().Add(-time.Minute).Truncate(time.Second)
	recs.Put(jobrec.Record{ID: "lost", Module: "m.wasm", N: 1, Submitter: "b", State: stateRunning, Started: started,
		Workers: []jobrec.Worker{{Rank: 0, State: workerRunning}}})
	recs.Close()

	d, _, _ = listenAt(t, Config{Name: "a", DataDir: data})
	_, err = Listen(Config{Name: "a", Listen: "127.0.0.1:0", DataDir: data, ClusterDir: filepath.Join(testDir, "cluster")})
	if !errors.Is(err, jobrec.ErrInUse) || strings.Contains(err.Error(), "\n") {
		t.Fatalf("a second daemon on the same --data: %v", err)
	}
	jobs := d.Status().Jobs
	if len(jobs) != 2 {
		t.Fatalf("after the restart: %+v", jobs)
	}
	j := jobs[1]
	if j.ID != before[0].ID || j.State != before[0].State || !j.Ended.Equal(before[0].Ended) ||
		len(j.Workers) != 1 || j.Workers[0].State != workerExited || j.Workers[0].Exit != 3 {
		t.Fatalf("the job ran: %+v, want as before: %+v", j, before[0])
	}
	l := jobs[0]
	if l.ID != "lost" || l.State != stateFailed || !strings.Contains(l.Why, "daemon stopped while the job ran") ||
		l.Ended.Before(started) || l.Workers[0].State != workerStopped {
		t.Fatalf("the job that ran when the daemon stopped: %+v", l)
	}
}

// waitEnded waits until every job of d has ended there, and returns them.
func waitEnded(t *testing.T, d *Daemon) []JobStatus {
	t.Helper()
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(10 * time.Millisecond) {
		jobs := d.Status().Jobs
		ended := 0
		for _, j := range jobs {
			if !j.Ended.IsZero() {
				ended++
			}
		}
		if ended == len(jobs) {
			return jobs
		}
		if time.Now().After(deadline) {
			t.Fatalf("the jobs did not end: %+v", jobs)
		}
	}
}
