package job

import (
	"bytes"
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/librahost/librahost/ckpt"
	"github.com/librahost/librahost/host/metrics"
	"github.com/librahost/librahost/host/metrics/metricstest"
)

// TestJobObserved: a job given Metrics and a Status reports each
// committed checkpoint to both (its pause, durable and commit times, its
// size and the bytes it added, the store's size), its rank's memory while
// it runs, and its state and ranks' at the end.
func TestJobObserved(t *testing.T) {
	module := testModuleFile(t, "../testdata/mem")
	run := metrics.NewRun(metrics.RunConfig{Started: time.Now()})
	st := NewStatus(2)
	var log bytes.Buffer
	// Each checkpoint line is written once its metrics are in: the
	// rank's memory gauge is there while the job runs.
	var memory []float64
	logw := lineFunc(func(line []byte) {
		if bytes.Contains(line, []byte(" durable: ")) {
			v, _ := metricstest.Scrape(t, run.Handler()).Value("librahost_guest_memory_bytes")
			memory = append(memory, v)
		}
		log.Write(line)
	})
	code, err := Run(context.Background(), Config{
		ModulePath: module, Args: []string{"mem", "8", "1", "3", "ckpt"},
		StateDir: t.TempDir(), Verbose: true, Log: logw, Stdout: io.Discard, Stderr: io.Discard,
		Metrics: run.Jobs(), Status: st,
	})
	if err != nil || code != 0 {
		t.Fatalf("run: %d %v\n%s", code, err, log.String())
	}
	if len(memory) != 3 {
		t.Fatalf("%d checkpoint lines, want 3:\n%s", len(memory), log.String())
	}
	// The program may end while the last two are written: each call
	// waits only while two rounds are under way.
	for i, m := range memory[:1] {
		if m < 8<<20 {
			t.Errorf("at checkpoint %d the guest's memory gauge is %v, want at least 8 MiB", i+1, m)
		}
	}
	f := metricstest.Scrape(t, run.Handler())
	for _, w := range []struct {
		name   string
		labels []string
		v      float64
	}{
		{"librahost_checkpoints_total", []string{"outcome", "committed"}, 3},
		{"librahost_checkpoints_total", []string{"outcome", "failed"}, 0},
		{"librahost_checkpoint_pause_seconds", nil, 3},
		{"librahost_checkpoint_held_seconds", nil, 3},
		{"librahost_checkpoint_durable_seconds", nil, 3},
		{"librahost_checkpoint_commit_seconds", nil, 3},
		{"librahost_checkpoint_size_bytes", nil, 3},
		{"librahost_guest_memory_bytes", nil, 0}, // the job ended
	} {
		if v := f.Must(t, w.name, w.labels...); v != w.v {
			t.Errorf("%s %v = %v, want %v", w.name, w.labels, v, w.v)
		}
	}
	if v := f.Must(t, "librahost_checkpoint_written_bytes_total"); v <= 0 {
		t.Errorf("librahost_checkpoint_written_bytes_total = %v, want more than 0", v)
	}

	v := st.Read()
	if v.State != "ended" || len(v.Ranks) != 1 || v.Ranks[0].State != "exited" || v.Ended.IsZero() {
		t.Errorf("status %s, ranks %+v, ended %v: want ended, rank 0 exited", v.State, v.Ranks, v.Ended)
	}
	if len(v.Checkpoints) != 2 { // NewStatus(2) keeps the newest 2
		t.Fatalf("%d checkpoints in the status, want 2: %+v", len(v.Checkpoints), v.Checkpoints)
	}
	for i, c := range v.Checkpoints {
		if c.Epoch != uint64(i+2) || c.Status != CheckpointCommitted || c.Acked != 1 || c.Of != 1 ||
			c.Triggered.IsZero() || c.Duration <= 0 || c.Size == 0 || c.Incremental == 0 {
			t.Errorf("checkpoint %d: %+v", i, c)
		}
	}
}

// lineFunc is a writer handing each write (a log line) to a function.
type lineFunc func([]byte)

func (f lineFunc) Write(p []byte) (int, error) {
	f(bytes.Clone(p))
	return len(p), nil
}

// TestJobObservedFailed: a checkpoint that fails is counted as failed and
// listed so, with why, in the status.
func TestJobObservedFailed(t *testing.T) {
	module := testModuleFile(t, "../testdata/mem")
	if err := ckpt.SetFailpoints("commit:tx=error"); err != nil {
		t.Fatal(err)
	}
	defer ckpt.SetFailpoints("")
	run := metrics.NewRun(metrics.RunConfig{Started: time.Now()})
	st := NewStatus(0)
	var log bytes.Buffer
	code, err := Run(context.Background(), Config{
		ModulePath: module, Args: []string{"mem", "8", "1", "2", "ckpt"},
		StateDir: t.TempDir(), Log: &log, Stdout: io.Discard, Stderr: io.Discard,
		Metrics: run.Jobs(), Status: st,
	})
	t.Logf("run: exit %d, %v\n%s", code, err, log.Bytes())
	f := metricstest.Scrape(t, run.Handler())
	failed := f.Must(t, "librahost_checkpoints_total", "outcome", "failed")
	if failed < 1 || f.Must(t, "librahost_checkpoints_total", "outcome", "committed") != 0 {
		t.Errorf("checkpoints failed %v, committed %v: want every one failed", failed, f.Must(t, "librahost_checkpoints_total", "outcome", "committed"))
	}
	cs := st.Read().Checkpoints
	if len(cs) != int(failed) {
		t.Fatalf("%d checkpoints in the status, %v failed in the metrics: %+v", len(cs), failed, cs)
	}
	for _, c := range cs {
		if c.Status != CheckpointFailed || !strings.Contains(c.Error, "failpoint") || c.Size != 0 {
			t.Errorf("checkpoint %+v: want failed by the failpoint", c)
		}
	}
}
