package host

import (
	"context"
	"errors"
	"fmt"

	"github.com/tetratelabs/wazero/api"
)

// Asyncify's states, as asyncify_get_state reports them.
const (
	asyncNormal    = 0
	asyncUnwinding = 1
	asyncRewinding = 2
)

// asyncBufPages is the size of the unwind buffer the host adds at the top
// of the guest's memory when it first captures: the saved call stack of a
// C or Rust program fits in a few KiB.
const asyncBufPages = 4

// asyncState is the host's side of asyncify for one guest.
type asyncState struct {
	rewinding bool
	buf       uint32 // address of the asyncify data structure, 0 if none yet
	bufPages  uint32 // memory size in pages right after buf was added
}

// Enter makes every libra.* and WASI import a capture point (wasi.Hooks).
// While rewinding it ends the rewind and lets the import run for real; when
// a checkpoint is pending it starts an unwind and tells the import to
// return at once.
func (w *Worker) Enter(ctx context.Context, mod api.Module) bool {
	w.checkStop()
	if w.async.rewinding {
		w.async.rewinding = false
		w.callAsync(ctx, mod, "asyncify_stop_rewind")
		return false
	}
	if !w.pending.Load() {
		return false
	}
	buf, err := w.asyncBuffer(mod)
	if err != nil {
		// Cannot unwind: the checkpoint is refused, the guest goes on.
		w.pending.Store(false)
		w.failCheckpoint(err)
		return false
	}
	w.callAsync(ctx, mod, "asyncify_start_unwind", uint64(buf))
	return true
}

// asyncBuffer returns the unwind buffer, adding pages at the top of
// memory when there is none or the guest has grown memory since: pages the
// guest's allocator has never seen, so nothing else writes there while the
// buffer is in use (from unwind until the rewind ends).
func (w *Worker) asyncBuffer(mod api.Module) (uint32, error) {
	mem := mod.Memory()
	if mem == nil {
		return 0, errors.New("host: guest has no memory")
	}
	pages := uint32(mem.Size() / 65536)
	if w.async.buf != 0 && w.async.bufPages == pages {
		return w.async.buf, nil
	}
	old, ok := mem.Grow(asyncBufPages)
	if !ok {
		return 0, errors.New("host: cannot checkpoint: guest memory is at its maximum")
	}
	buf := old * 65536
	mem.WriteUint32Le(buf, buf+8)
	mem.WriteUint32Le(buf+4, buf+asyncBufPages*65536)
	w.async.buf = buf
	w.async.bufPages = old + asyncBufPages
	return buf, nil
}

// callAsync calls one of asyncify's exports from inside an import; a
// failure there ends the guest's call with that error.
func (w *Worker) callAsync(ctx context.Context, mod api.Module, name string, params ...uint64) uint64 {
	r, err := asyncCall(ctx, mod, name, params...)
	if err != nil {
		panic(err)
	}
	return r
}

func asyncCall(ctx context.Context, mod api.Module, name string, params ...uint64) (uint64, error) {
	f := mod.ExportedFunction(name)
	if f == nil {
		return 0, fmt.Errorf("host: module exports no %s function", name)
	}
	res, err := f.Call(ctx, params...)
	if err != nil || len(res) == 0 {
		return 0, err
	}
	return res[0], nil
}

func (w *Worker) runAsyncify(ctx context.Context) error {
	start := w.mod.ExportedFunction("_start")
	if start == nil {
		return errors.New("host: module exports no _start function")
	}
	rewind := w.restored != nil
	w.restored = nil
	for {
		if rewind {
			w.async.rewinding = true
			if _, err := asyncCall(ctx, w.mod, "asyncify_start_rewind", uint64(w.async.buf)); err != nil {
				return err
			}
		}
		if _, err := start.Call(ctx); err != nil {
			return err
		}
		state, err := asyncCall(ctx, w.mod, "asyncify_get_state")
		if err != nil || state != asyncUnwinding {
			return err
		}
		if _, err := asyncCall(ctx, w.mod, "asyncify_stop_unwind"); err != nil {
			return err
		}
		if err := w.capture(); err != nil {
			return err
		}
		rewind = true
	}
}
