package job

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// A job stopped after a final checkpoint and resumed in-process prints
// what an uninterrupted job prints; a resume of the finished job reports
// its exit code.
func TestJobStopResume(t *testing.T) {
	module := testGuest(t, "../../samples/heat")
	path := filepath.Join(t.TempDir(), "heat.wasm")
	if err := os.WriteFile(path, module, 0o644); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	cache := filepath.Join(guests.Dir, "wazero")
	// The stop comes once the first checkpoint is durable. Checkpoints are
	// asked for every 2 ms, so that one is asked for while the ranks leave
	// after the final one (such a round could never end). A job that ends
	// before its first checkpoint is durable (a loaded machine) is run
	// again with twice the work.
	for steps := 300; ; steps *= 2 {
		args := []string{"heat", "-grid", "64", "-steps", fmt.Sprint(steps), "-every", "20"}
		var want bytes.Buffer
		if code, err := Run(ctx, Config{ModulePath: path, N: 3, Args: args, Stdout: &want, CacheDir: cache}); code != 0 || err != nil {
			t.Fatalf("exit %d: %v", code, err)
		}
		state := filepath.Join(t.TempDir(), "st")
		var got, log bytes.Buffer
		stop := make(chan struct{})
		onLog := &stopAfter{w: &log, stop: stop}
		cfg := Config{ModulePath: path, N: 3, Args: args, Stdout: &got, Log: onLog, StateDir: state,
			CheckpointEvery: 2 * time.Millisecond, Stop: stop, CacheDir: cache, Verbose: true}
		code, err := Run(ctx, cfg)
		if code == 0 && err == nil && steps < 300<<6 {
			t.Logf("%d steps ended before the stop; again with more", steps)
			continue
		}
		if !errors.Is(err, ErrStopped) {
			t.Fatalf("stop: exit %d, %v\n%s", code, err, log.Bytes())
		}
		resume := Config{StateDir: state, Resume: true, Stdout: &got, Log: &log, CheckpointEvery: 50 * time.Millisecond, CacheDir: cache}
		if code, err := Run(ctx, resume); code != 0 || err != nil {
			t.Fatalf("resume: exit %d: %v\n%s", code, err, log.Bytes())
		}
		if !bytes.Equal(got.Bytes(), want.Bytes()) {
			t.Fatalf("output:\n%s\nwant:\n%s\nlog:\n%s", got.Bytes(), want.Bytes(), log.Bytes())
		}
		log.Reset()
		if code, err := Run(ctx, resume); code != 0 || err != nil || !bytes.Contains(log.Bytes(), []byte("already finished")) {
			t.Fatalf("resume of the finished job: exit %d, %v: %s", code, err, log.Bytes())
		}
		return
	}
}

// stopAfter closes stop at the first line saying a checkpoint is durable.
type stopAfter struct {
	w    *bytes.Buffer
	stop chan struct{}
	once sync.Once
}

func (s *stopAfter) Write(p []byte) (int, error) {
	if bytes.Contains(p, []byte("durable")) {
		s.once.Do(func() { close(s.stop) })
	}
	return s.w.Write(p)
}
