package host

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/librahost/librahost/transport"
	"github.com/librahost/librahost/wasi"
)

// JobConfig is a job of N workers on this machine (`librahost run -n N`):
// every worker runs the same module, in its own wazero runtime, and they
// exchange messages through one in-process transport endpoint.
type JobConfig struct {
	ModulePath string
	N          int
	Args       []string
	Env        []string
	Mounts     []wasi.Mount

	Stdin          io.Reader // given to rank 0; the others read nothing
	Stdout, Stderr io.Writer
	Log            io.Writer
	// Prefix starts every line a worker prints with "[rank] ".
	Prefix bool

	CacheDir string
	// Stop, when closed, stops the job: after a final checkpoint if it
	// has a state directory (the job then ends with ErrStopped).
	Stop <-chan struct{}

	// Deterministic makes clocks and random numbers come from Seed.
	Deterministic bool
	Seed          uint64

	// StateDir holds the job's checkpoints, run record and output ledger;
	// "" runs without checkpoints. The rest is as in SessionConfig.
	StateDir        string
	CheckpointEvery time.Duration
	Keep            int
	Resume          bool   // continue the job in StateDir (N and the rest come from its record)
	Epoch           uint64 // with Resume: this committed job epoch, not the newest good one
	Verbose         bool
}

// RunJob runs a job of cfg.N workers to its end. The exit code is the
// first non-zero exit code by rank, or 0; a trap in any worker stops the
// job with that error.
func RunJob(ctx context.Context, cfg JobConfig) (int, error) {
	if cfg.Log == nil {
		cfg.Log = io.Discard
	}
	if cfg.StateDir != "" {
		return runCheckpointedJob(ctx, cfg)
	}
	if cfg.N < 1 {
		return 1, errors.New("host: a job needs at least one worker")
	}
	module, err := os.ReadFile(cfg.ModulePath)
	if err != nil {
		return 1, fmt.Errorf("host: %w", err)
	}
	ep, err := transport.NewEndpoint(transport.EndpointConfig{
		Host:        "local",
		Route:       func(uint32) transport.HostID { return "local" },
		StableOnAck: true, // no checkpoints yet: nothing needs the sender logs
		Logf:        func(format string, args ...any) { fmt.Fprintf(cfg.Log, "librahost: "+format+"\n", args...) },
	})
	if err != nil {
		return 1, err
	}
	defer ep.Close()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if cfg.Stop != nil {
		go func() {
			select {
			case <-cfg.Stop:
				cancel()
			case <-ctx.Done():
			}
		}()
	}
	ranks := make([]int, cfg.N)
	for r := range ranks {
		ranks[r] = r
	}
	var outMu sync.Mutex
	res, err := RunRanks(ctx, RanksConfig{
		Module:        module,
		ModuleName:    displayName(cfg.ModulePath),
		Ranks:         ranks,
		Size:          cfg.N,
		Args:          cfg.Args,
		Env:           cfg.Env,
		Mounts:        cfg.Mounts,
		Stdin:         cfg.Stdin,
		Stdout:        func(r int) io.Writer { return NewRankWriter(cfg.Stdout, &outMu, r, cfg.Prefix) },
		Stderr:        func(r int) io.Writer { return NewRankWriter(cfg.Stderr, &outMu, r, cfg.Prefix) },
		Endpoint:      ep,
		CacheDir:      cfg.CacheDir,
		Log:           cfg.Log,
		Deterministic: cfg.Deterministic,
		Seed:          cfg.Seed,
	})
	if err != nil {
		return 1, err
	}
	if cfg.Stop != nil && isClosed(cfg.Stop) {
		return 130, ErrStopped
	}
	return res.Outcome()
}

// jobFromSession is the job a `run --resume` or `restore` of a job's
// state directory continues.
func jobFromSession(c SessionConfig) JobConfig {
	return JobConfig{
		ModulePath: c.ModulePath, Stdin: c.Stdin, Stdout: c.Stdout, Stderr: c.Stderr, Log: c.Log,
		CacheDir: c.CacheDir, Stop: c.Stop, StateDir: c.StateDir, CheckpointEvery: c.CheckpointEvery,
		Keep: c.Keep, Resume: true, Epoch: c.Epoch, Verbose: c.Verbose,
	}
}
