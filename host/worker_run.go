package host

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/tetratelabs/wazero/sys"
)

// Status values of the SDK's libra_run export.
const (
	runFinished = 0
	runPaused   = 1
	runWaiting  = 2
)

// Run runs the guest until it exits. It returns the guest's exit code;
// an error means a trap or a host failure, not a non-zero exit.
func (w *Worker) Run(ctx context.Context) (int, error) {
	done := make(chan struct{})
	defer close(done)
	go w.watchInbox(done)
	go func() {
		select {
		case <-ctx.Done():
			w.stop()
		case <-done:
		}
	}()
	var err error
	switch w.kind {
	case KindGo:
		err = w.runGo(ctx)
	case KindAsyncify:
		err = w.runAsyncify(ctx)
	default:
		err = w.call(ctx, "_start")
	}
	// A lazy restore's fill is done with before the run is: a damaged
	// chunk ends it even if the guest never touched it, whatever the
	// machine's speed.
	if err := w.lazyWait(); err != nil && !errors.Is(err, errLazyStopped) {
		return 1, err
	}
	return exitCode(ctx, err)
}

func (w *Worker) call(ctx context.Context, name string, params ...uint64) error {
	f := w.mod.ExportedFunction(name)
	if f == nil {
		return fmt.Errorf("host: module exports no %s function", name)
	}
	_, err := f.Call(ctx, params...)
	return err
}

func (w *Worker) runGo(ctx context.Context) error {
	if w.restored == nil {
		if err := w.call(ctx, "_initialize"); err != nil {
			return err
		}
	}
	w.restored = nil
	run := w.mod.ExportedFunction("libra_run")
	if run == nil {
		return errors.New("host: module exports no libra_run function")
	}
	p := newPoker(w)
	defer p.close()
	for {
		p.resume()
		res, err := run.Call(ctx)
		p.pause()
		if err != nil {
			return err
		}
		switch res[0] {
		case runFinished:
			return nil
		case runPaused:
			if w.pending.Load() {
				if err := w.capture(); err != nil {
					return err
				}
			}
		case runWaiting:
			if err := w.wait(ctx); err != nil {
				return err
			}
		default:
			return fmt.Errorf("host: libra_run returned unknown status %d", res[0])
		}
	}
}

// wait blocks a guest that waits for a message until one arrives or a
// checkpoint is due.
func (w *Worker) wait(ctx context.Context) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-w.interrupt:
		return nil
	}
}

// exitCode turns the result of a guest call into an exit code, or a
// one-line error for a trap.
func exitCode(ctx context.Context, err error) (int, error) {
	if err == nil {
		return 0, nil
	}
	var ee *sys.ExitError
	if errors.As(err, &ee) {
		if ctx.Err() != nil && ee.ExitCode() == sys.ExitCodeContextCanceled {
			return 1, ctx.Err()
		}
		return int(ee.ExitCode()), nil
	}
	if strings.HasPrefix(err.Error(), "host: ") {
		return 1, err
	}
	msg := err.Error()
	if i := strings.IndexByte(msg, '\n'); i >= 0 {
		msg = msg[:i]
	}
	return 1, &TrapError{Msg: strings.TrimPrefix(msg, "wasm error: ")}
}
