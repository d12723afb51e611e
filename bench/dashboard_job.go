package main

import (
	"context"
	"errors"
	"io"
	"time"

	"github.com/librahost/librahost/host/job"
)

// runSessionInProcess runs a module in this process with a checkpoint
// every `every`, its -v lines to log, until stop is closed (then it takes
// a final checkpoint).
func runSessionInProcess(wasm string, args []string, state, cache string, every time.Duration, stdout, log io.Writer, stop <-chan struct{}) (int, error) {
	code, err := job.Run(context.Background(), job.Config{
		ModulePath: wasm, Args: args, StateDir: state, CheckpointEvery: every, Keep: 2,
		Stdout: stdout, Stderr: io.Discard, Log: log, Verbose: true, CacheDir: cache, Stop: stop,
	})
	if errors.Is(err, job.ErrStopped) {
		err = nil
	}
	return code, err
}
