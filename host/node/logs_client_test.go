package node

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/librahost/librahost/transport"
)

// byRank splits output printed with prefixes into each rank's lines.
func byRank(s string) map[string][]string {
	out := map[string][]string{}
	for _, l := range strings.Split(strings.TrimSuffix(s, "\n"), "\n") {
		r, _, _ := strings.Cut(l, " ")
		out[r] = append(out[r], l)
	}
	return out
}

func logsCfg(addrs []string, job string) (LogsConfig, *syncBuffer, *syncBuffer) {
	var out, errOut syncBuffer
	cfg, _, _ := submitCfg(addrs, 1, nil)
	return LogsConfig{Client: cfg.Client, Hosts: addrs, Job: job, Prefix: true, Stdout: &out, Stderr: &errOut, Log: &errOut}, &out, &errOut
}

// After a job over two hosts, Logs prints each rank's output as the
// submitter printed it, and the job's end; a job no host has, and a job
// with ranks on a host not asked, are refused in one line.
func TestLogsAfterEnd(t *testing.T) {
	ticks := testGuest(t, "../../tests/testdata/ticks")
	ds, _, _ := startDaemons(t, transport.Faults{}, "a", "b", "c")
	addrs := []string{ds[0].Addr().String(), ds[1].Addr().String()}
	cfg, out, _ := submitCfg(addrs, 3, ticks, "20")
	cfg.Prefix = true
	if code, err := Submit(context.Background(), cfg); code != 0 || err != nil {
		t.Fatalf("exit %d, %v", code, err)
	}
	waitEnded(t, ds[0])
	waitEnded(t, ds[1])
	id := ds[0].Status().Jobs[0].ID

	lc, got, errOut := logsCfg(addrs, id)
	end, err := Logs(context.Background(), lc)
	if err != nil {
		t.Fatal(err)
	}
	want := byRank(out.String())
	if len(want) != 3 || len(want["[2]"]) != 20 {
		t.Fatalf("the submitter printed %q", out)
	}
	for r, lines := range byRank(got.String()) {
		if !slices.Equal(lines, want[r]) {
			t.Fatalf("rank %s: logs printed %q, the submitter %q", r, lines, want[r])
		}
	}
	if len(byRank(got.String())) != 3 || errOut.String() != "" {
		t.Fatalf("logs printed %q, %q", got, errOut)
	}
	if code, err := end.Outcome(); code != 0 || err != nil || len(end.Hosts) != 2 {
		t.Fatalf("outcome %d, %v of %+v", code, err, end)
	}

	lc, _, _ = logsCfg(addrs, "nosuchjob")
	if _, err := Logs(context.Background(), lc); !errors.Is(err, ErrNoJob) || strings.Contains(err.Error(), "\n") {
		t.Fatalf("logs of no job: %v", err)
	}
	lc, got, _ = logsCfg(addrs[:1], id)
	if _, err := Logs(context.Background(), lc); err == nil || !strings.Contains(err.Error(), "ranks on host b too") || got.String() != "" {
		t.Fatalf("logs asking host a only: %v, printed %q", err, got)
	}
	lc, _, _ = logsCfg([]string{addrs[0], addrs[1], ds[2].Addr().String()}, id)
	if _, err := Logs(context.Background(), lc); err != nil {
		t.Fatalf("a host asked that has no part: %v", err)
	}
}

// Following a running job prints its output as it comes (from the start,
// or from now on), and ends with the job: cancelled, its outcome says so.
func TestLogsFollow(t *testing.T) {
	long := testGuest(t, "../../tests/testdata/longjob")
	ds, _, _ := startDaemons(t, transport.Faults{}, "a", "b")
	addrs := []string{ds[0].Addr().String(), ds[1].Addr().String()}
	cfg, _, _ := submitCfg(addrs, 2, long, "600")
	res := submitAsync(cfg)
	id := waitJobListed(t, ds[1], res, true)
	lc, got, _ := logsCfg(addrs, id)
	seen, done := followLogs(lc, got, "rank 1 tick 2\n")
	<-seen
	if !strings.HasPrefix(byRank(got.String())["[1]"][0], "[1] rank 1 started") {
		t.Fatalf("followed %q", got)
	}
	if _, errs, _ := CancelJob(context.Background(), cfg.Client, addrs, id); errs[0] != nil || errs[1] != nil {
		t.Fatal(errs)
	}
	r := <-done
	code, err := r.end.Outcome()
	if r.err != nil || code != 1 || err == nil || !strings.Contains(err.Error(), "cancelled by `librahost cancel`") {
		t.Fatalf("outcome %d, %v (%v)", code, err, r.err)
	}
	res.wait(t)
}

// logsResult is what Logs returned.
type logsResult struct {
	end JobEnd
	err error
}

// followLogs runs Logs with lc following the job, its output into got;
// seen is closed once got holds until, done gets what Logs returned.
func followLogs(lc LogsConfig, got *syncBuffer, until string) (seen <-chan struct{}, done <-chan logsResult) {
	lc.Follow = true
	s, d := make(chan struct{}), make(chan logsResult, 1)
	var once sync.Once
	lc.Stdout = writerFunc(func(p []byte) (int, error) {
		got.Write(p)
		if strings.Contains(got.String(), until) {
			once.Do(func() { close(s) })
		}
		return len(p), nil
	})
	go func() {
		end, err := Logs(context.Background(), lc)
		d <- logsResult{end, err}
	}()
	return s, d
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// A host that keeps only the newest output of a job: logs prints what is
// kept and says in one line on stderr how much of each rank's stream is
// no longer kept; a job whose output is gone is refused in one line.
func TestLogsBounded(t *testing.T) {
	ticks := testGuest(t, "../../tests/testdata/ticks")
	d, _, _ := listenAt(t, Config{Name: "a", DataDir: t.TempDir(), MaxOutput: 800})
	addrs := []string{d.Addr().String()}
	cfg, out, _ := submitCfg(addrs, 1, ticks, "60")
	if code, err := Submit(context.Background(), cfg); code != 0 || err != nil {
		t.Fatalf("exit %d, %v", code, err)
	}
	id := waitEnded(t, d)[0].ID
	lc, got, errOut := logsCfg(addrs, id)
	lc.Prefix = false
	if _, err := Logs(context.Background(), lc); err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(out.String(), got.String()) || !strings.HasSuffix(got.String(), "tick 59\n") || len(got.String()) > 800 {
		t.Fatalf("kept %q of %q", got, out)
	}
	dropped := len(out.String()) - len(got.String())
	if want := "librahost: job " + id + ": the first " + strconv.Itoa(dropped) + " bytes of rank 0's stdout are no longer kept\n"; errOut.String() != want {
		t.Fatalf("stderr %q, want %q", errOut, want)
	}

	os.RemoveAll(filepath.Join(d.cfg.DataDir, "output", id))
	lc, got, _ = logsCfg(addrs, id)
	if _, err := Logs(context.Background(), lc); !errors.Is(err, ErrOutputGone) || strings.Contains(err.Error(), "\n") || got.String() != "" {
		t.Fatalf("logs of output gone: %v", err)
	}
}

// A job cancelled by hand on one host is cancelled by its submitter on
// the others: the outcome names the cancel by hand, whichever host
// comes first.
func TestOutcomeOwnReasonFirst(t *testing.T) {
	byHand := "cancelled by `librahost cancel` from host c"
	for _, order := range [][2]string{{whyBySubmitter, byHand}, {byHand, whyBySubmitter}} {
		end := JobEnd{Job: "j1", Hosts: []JobStatus{
			{ID: "j1", State: stateCancelled, Why: order[0], Ended: time.Now()},
			{ID: "j1", State: stateCancelled, Why: order[1], Ended: time.Now()},
		}}
		code, err := end.Outcome()
		if code != 1 || err == nil || err.Error() != "job j1 cancelled: "+byHand {
			t.Errorf("hosts' reasons %q: exit %d, %v", order, code, err)
		}
	}
	end := JobEnd{Job: "j1", Hosts: []JobStatus{{ID: "j1", State: stateCancelled, Why: whyBySubmitter, Ended: time.Now()}}}
	if code, err := end.Outcome(); code != 1 || err == nil || err.Error() != "job j1 cancelled: "+whyBySubmitter {
		t.Errorf("cancelled by the submitter alone: exit %d, %v", code, err)
	}
}

// A host that gets its part of a job after attach asked it (the job
// reaches its hosts one after another) is asked again, and followed: the
// output of its ranks is printed and its end is the job's too.
func TestLogsFollowLateHost(t *testing.T) {
	long := testGuest(t, "../../tests/testdata/longjob")
	ds, _, _ := startDaemons(t, transport.Faults{}, "a", "b")
	addrs := []string{ds[0].Addr().String(), ds[1].Addr().String()}
	arrived, release, unknown := make(chan struct{}), make(chan struct{}), make(chan struct{})
	var once sync.Once
	ds[1].testJobWait = func() { close(arrived); <-release }
	ds[1].testLogsUnknown = func() { once.Do(func() { close(unknown) }) }
	cfg, _, _ := submitCfg(addrs, 2, long, "600")
	res := submitAsync(cfg)
	<-arrived
	id := waitJobListed(t, ds[0], res, false)
	lc, got, errOut := logsCfg(addrs, id)
	// Host b's rank is followed once it runs: its lines come after b
	// said it had no such job.
	seen, done := followLogs(lc, got, "rank 1 tick 2\n")
	<-unknown // host b said it has no such job
	close(release)
	select {
	case <-seen:
	case r := <-done:
		t.Fatalf("logs ended before the job: %+v, %v", r.end, r.err)
	}
	if _, errs, _ := CancelJob(context.Background(), cfg.Client, addrs, id); errs[0] != nil || errs[1] != nil {
		t.Fatal(errs)
	}
	r := <-done
	if r.err != nil || len(r.end.Hosts) != 2 {
		t.Fatalf("followed the hosts %+v (%v)", r.end.Hosts, r.err)
	}
	if lines := byRank(got.String())["[1]"]; len(lines) == 0 || !strings.HasPrefix(lines[0], "[1] rank 1 started") {
		t.Fatalf("host b's rank 1 not followed: %q", got)
	}
	if errOut.String() != "" {
		t.Fatalf("logs said %q", errOut)
	}
	res.wait(t)
}

// waitJobListed waits until d lists the one job submitted by res (and it
// runs, if running) and returns its ID.
func waitJobListed(t *testing.T, d *Daemon, res *submitted, running bool) string {
	t.Helper()
	for {
		if jobs := d.Status().Jobs; len(jobs) == 1 && (!running || jobs[0].State == stateRunning) {
			return jobs[0].ID
		}
		select {
		case <-res.done:
			t.Fatalf("the job ended: %v", res.err)
		case <-time.After(10 * time.Millisecond):
		}
	}
}
