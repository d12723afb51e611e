package host

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"

	"github.com/tetratelabs/wazero"

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
	Stop     <-chan struct{} // closed: stop the job
}

// RunJob runs a job of cfg.N workers to its end. The exit code is the
// first non-zero exit code by rank, or 0; a trap in any worker stops the
// job with that error.
func RunJob(ctx context.Context, cfg JobConfig) (int, error) {
	if cfg.N < 1 {
		return 1, errors.New("host: a job needs at least one worker")
	}
	if cfg.Log == nil {
		cfg.Log = io.Discard
	}
	module, err := os.ReadFile(cfg.ModulePath)
	if err != nil {
		return 1, fmt.Errorf("host: %w", err)
	}
	var cache wazero.CompilationCache
	if cfg.CacheDir != "" {
		if c, err := wazero.NewCompilationCacheWithDir(cfg.CacheDir); err == nil {
			cache = c
		}
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
	var outMu sync.Mutex
	workers := make([]*Worker, cfg.N)
	for r := range workers {
		var stdin io.Reader
		if r == 0 {
			stdin = cfg.Stdin
		}
		w, err := NewWorker(ctx, Config{
			Module:   module,
			Args:     cfg.Args,
			Env:      cfg.Env,
			Mounts:   cfg.Mounts,
			Stdin:    stdin,
			Stdout:   NewOutput(newRankWriter(cfg.Stdout, &outMu, r, cfg.Prefix), nil),
			Stderr:   NewOutput(newRankWriter(cfg.Stderr, &outMu, r, cfg.Prefix), nil),
			Rank:     r,
			Size:     cfg.N,
			Endpoint: ep,
			Cache:    cache,
		})
		if err != nil {
			for _, w := range workers[:r] {
				w.Close(context.Background())
			}
			return 1, err
		}
		if r == 0 && w.Kind() == KindPlain && cfg.N > 1 {
			fmt.Fprintf(cfg.Log, "librahost: warning: %s was not built by `librahost build`: it runs, but cannot be checkpointed\n", displayName(cfg.ModulePath))
		}
		workers[r] = w
	}
	codes := make([]int, cfg.N)
	errs := make([]error, cfg.N)
	var wg sync.WaitGroup
	for r, w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			codes[r], errs[r] = w.Run(ctx)
			if errors.Is(errs[r], context.Canceled) {
				codes[r], errs[r] = 0, nil // stopped because another failed
				return
			}
			if errs[r] != nil {
				errs[r] = fmt.Errorf("rank %d: %w", r, errs[r])
			}
			if errs[r] != nil || codes[r] != 0 {
				cancel() // one worker's failure ends the job, as mpirun's would
			}
		}()
	}
	wg.Wait()
	for _, w := range workers {
		w.Close(context.Background())
	}
	flushRankWriters(workers)
	if cfg.Stop != nil && isClosed(cfg.Stop) {
		return 130, ErrStopped
	}
	for _, err := range errs {
		if err != nil {
			return 1, err
		}
	}
	for _, c := range codes {
		if c != 0 {
			return c, nil
		}
	}
	return 0, nil
}

// rankWriter writes one worker's output to the shared stream in whole
// lines (so that lines of different ranks never mix), with an optional
// "[rank] " prefix.
type rankWriter struct {
	w      io.Writer
	mu     *sync.Mutex
	prefix []byte
	buf    []byte
}

func newRankWriter(w io.Writer, mu *sync.Mutex, rank int, prefix bool) io.Writer {
	if w == nil {
		return nil
	}
	rw := &rankWriter{w: w, mu: mu}
	if prefix {
		rw.prefix = []byte(fmt.Sprintf("[%d] ", rank))
	}
	return rw
}

func (rw *rankWriter) Write(p []byte) (int, error) {
	rw.buf = append(rw.buf, p...)
	i := bytes.LastIndexByte(rw.buf, '\n')
	if i < 0 && len(rw.buf) < 64<<10 {
		return len(p), nil
	}
	lines := rw.buf
	if i >= 0 {
		lines = rw.buf[:i+1]
	}
	rw.mu.Lock()
	err := rw.emit(lines)
	rw.mu.Unlock()
	rw.buf = append(rw.buf[:0], rw.buf[len(lines):]...)
	return len(p), err
}

func (rw *rankWriter) emit(b []byte) error {
	if rw.prefix == nil {
		_, err := rw.w.Write(b)
		return err
	}
	var out []byte
	for len(b) > 0 {
		i := bytes.IndexByte(b, '\n')
		line := b
		if i >= 0 {
			line = b[:i+1]
		}
		out = append(append(out, rw.prefix...), line...)
		b = b[len(line):]
	}
	_, err := rw.w.Write(out)
	return err
}

// flushRankWriters writes out what is left of unterminated last lines.
func flushRankWriters(ws []*Worker) {
	for _, w := range ws {
		for _, o := range []*Output{w.cfg.Stdout, w.cfg.Stderr} {
			if o == nil {
				continue
			}
			if rw, ok := o.w.(*rankWriter); ok && len(rw.buf) > 0 {
				rw.mu.Lock()
				rw.emit(rw.buf)
				rw.mu.Unlock()
				rw.buf = nil
			}
		}
	}
}
