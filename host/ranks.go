package host

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"

	"github.com/tetratelabs/wazero"

	"github.com/librahost/librahost/transport"
	"github.com/librahost/librahost/wasi"
)

// RanksConfig is the part of a job that runs on one host: some of its
// ranks, all of the same module, exchanging messages through Endpoint
// with each other and with the ranks of other hosts.
type RanksConfig struct {
	Module     []byte
	ModuleName string // for messages
	Ranks      []int  // the ranks to run here, each in 0..Size-1
	Size       int    // the job's number of workers
	Args       []string
	Env        []string
	Mounts     []wasi.Mount

	Stdin io.Reader // given to rank 0 if it runs here
	// Stdout and Stderr return each rank's output streams (nil: discarded).
	// A writer with a Flush() error method is flushed when its rank ends.
	Stdout, Stderr func(rank int) io.Writer

	Endpoint *transport.Endpoint
	CacheDir string    // wazero compilation cache; empty: none
	Log      io.Writer // warnings

	// Journal returns the path of a rank's file undo journal; nil or ""
	// means its files are not rolled back.
	Journal       func(rank int) string
	Deterministic bool
	Seed          uint64

	// Made, if set, returns a rank's worker made ahead (NewRankWorker),
	// nil to have it made here; RunRanks runs and closes it as its own.
	Made func(rank int) *Worker

	// Hooks of a driver that checkpoints the ranks; all optional.
	// Prepare is called with each rank's worker once all are made and
	// before any runs (to restore it). OnPause and OnCheckpointFailed are
	// the workers' (Config). OnExit is told when a rank's program ended,
	// before the job is stopped for a failure.
	Prepare            func(rank int, w *Worker) error
	OnPause            func(rank int, c *Capture) error
	OnCheckpointFailed func(rank int, err error)
	OnExit             func(rank int, code int, err error)
}

// RanksResult is how each rank of a RunRanks call ended, in the order of
// RanksConfig.Ranks, less the ranks that moved to another host
// (ErrMoved): they did not end here. Errs holds nil for a rank stopped
// because another failed.
type RanksResult struct {
	Ranks []int
	Codes []int
	Errs  []error
}

// Outcome folds a result into one exit code and error: the first error by
// rank, else the first non-zero exit code, else 0.
func (r RanksResult) Outcome() (int, error) {
	for _, err := range r.Errs {
		if err != nil {
			return 1, err
		}
	}
	for _, c := range r.Codes {
		if c != 0 {
			return c, nil
		}
	}
	return 0, nil
}

// RunRanks runs cfg.Ranks to their end. A rank that traps or exits with a
// non-zero code cancels the others, as mpirun would; so does ctx.
func RunRanks(ctx context.Context, cfg RanksConfig) (RanksResult, error) {
	if cfg.Size < 1 || len(cfg.Ranks) == 0 {
		return RanksResult{}, errors.New("host: a job needs at least one worker")
	}
	for _, r := range cfg.Ranks {
		if r < 0 || r >= cfg.Size {
			return RanksResult{}, fmt.Errorf("host: rank %d outside a job of %d workers", r, cfg.Size)
		}
	}
	if cfg.Log == nil {
		cfg.Log = io.Discard
	}
	cache := compilationCache(cfg.CacheDir)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	workers := make([]*Worker, len(cfg.Ranks))
	for i, r := range cfg.Ranks {
		var w *Worker
		if cfg.Made != nil {
			w = cfg.Made(r)
		}
		var err error
		if w == nil {
			w, err = rankWorker(ctx, cfg, cache, r)
		}
		if err != nil {
			for _, w := range workers[:i] {
				w.Close(context.Background())
			}
			return RanksResult{}, err
		}
		if i == 0 && w.Kind() == KindPlain {
			fmt.Fprintf(cfg.Log, "librahost: warning: %s was not built by `librahost build`: it runs, but cannot be checkpointed\n", cfg.ModuleName)
		}
		workers[i] = w
	}
	closeAll := func() {
		for _, w := range workers {
			w.Close(context.Background())
		}
	}
	if cfg.Prepare != nil {
		for i, w := range workers {
			if err := cfg.Prepare(cfg.Ranks[i], w); err != nil {
				closeAll()
				return RanksResult{}, err
			}
		}
	}
	res := RanksResult{
		Ranks: cfg.Ranks,
		Codes: make([]int, len(workers)),
		Errs:  make([]error, len(workers)),
	}
	moved := make([]bool, len(workers))
	var wg sync.WaitGroup
	for i, w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			code, err := w.Run(ctx)
			if errors.Is(err, ErrMoved) {
				moved[i] = true
				return
			}
			if errors.Is(err, context.Canceled) {
				return // stopped because another failed, or by ctx
			}
			if cfg.OnExit != nil {
				cfg.OnExit(cfg.Ranks[i], code, err)
			}
			if err != nil && cfg.Size > 1 {
				err = fmt.Errorf("rank %d: %w", cfg.Ranks[i], err)
			}
			res.Codes[i], res.Errs[i] = code, err
			if err != nil || code != 0 {
				cancel() // one worker's failure ends the job
			}
		}()
	}
	wg.Wait()
	closeAll()
	flushOutputs(workers)
	return res.without(moved), nil
}

// without leaves out of r the ranks marked in drop (by index).
func (r RanksResult) without(drop []bool) RanksResult {
	if !slices.Contains(drop, true) {
		return r
	}
	var out RanksResult
	for i, rank := range r.Ranks {
		if !drop[i] {
			out.Ranks = append(out.Ranks, rank)
			out.Codes = append(out.Codes, r.Codes[i])
			out.Errs = append(out.Errs, r.Errs[i])
		}
	}
	return out
}

// NewRankWorker makes rank's worker as RunRanks would (compiled and
// instantiated, not run), for RanksConfig.Made: a driver makes it ahead
// of the run, as a migration's target does while the rank still runs at
// its source.
func NewRankWorker(ctx context.Context, cfg RanksConfig, rank int) (*Worker, error) {
	if rank < 0 || rank >= cfg.Size {
		return nil, fmt.Errorf("host: rank %d outside a job of %d workers", rank, cfg.Size)
	}
	return rankWorker(ctx, cfg, compilationCache(cfg.CacheDir), rank)
}

// compilationCache opens the compilation cache in dir; nil if none.
func compilationCache(dir string) wazero.CompilationCache {
	if dir == "" {
		return nil
	}
	c, err := wazero.NewCompilationCacheWithDir(dir)
	if err != nil {
		return nil
	}
	return c
}

// rankWorker makes rank r's worker of cfg.
func rankWorker(ctx context.Context, cfg RanksConfig, cache wazero.CompilationCache, r int) (*Worker, error) {
	stream := func(f func(int) io.Writer, r int) *Output {
		if f == nil {
			return nil
		}
		if w := f(r); w != nil {
			return NewOutput(w)
		}
		return nil
	}
	var stdin io.Reader
	if r == 0 {
		stdin = cfg.Stdin
	}
	wc := Config{
		Module:        cfg.Module,
		Args:          cfg.Args,
		Env:           cfg.Env,
		Mounts:        cfg.Mounts,
		Stdin:         stdin,
		Stdout:        stream(cfg.Stdout, r),
		Stderr:        stream(cfg.Stderr, r),
		Rank:          r,
		Size:          cfg.Size,
		Endpoint:      cfg.Endpoint,
		Cache:         cache,
		Deterministic: cfg.Deterministic,
		Seed:          cfg.Seed,
	}
	if cfg.Journal != nil {
		wc.Journal = cfg.Journal(r)
	}
	if cfg.OnPause != nil {
		wc.OnPause = func(c *Capture) error { return cfg.OnPause(r, c) }
	}
	if cfg.OnCheckpointFailed != nil {
		wc.OnCheckpointFailed = func(err error) { cfg.OnCheckpointFailed(r, err) }
	}
	return NewWorker(ctx, wc)
}

// flushOutputs writes out what the workers' output writers still hold.
func flushOutputs(ws []*Worker) {
	for _, w := range ws {
		for _, o := range []*Output{w.cfg.Stdout, w.cfg.Stderr} {
			if o == nil {
				continue
			}
			if f, ok := o.Writer().(interface{ Flush() error }); ok {
				f.Flush()
			}
		}
	}
}
