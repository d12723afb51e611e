package host

import (
	"context"
	"math"

	"github.com/tetratelabs/wazero/api"

	"github.com/librahost/librahost/host/wasmbin"
)

// instantiateLibra instantiates the "libra" host module: the SDK's calls.
// For an asyncify guest each one is a capture point.
func (w *Worker) instantiateLibra(ctx context.Context) error {
	b := w.rt.NewHostModuleBuilder("libra")
	i32 := []api.ValueType{api.ValueTypeI32}
	i64 := []api.ValueType{api.ValueTypeI64}
	fn := func(name string, results []api.ValueType, f func(ctx context.Context, mod api.Module) uint64) {
		b.NewFunctionBuilder().WithGoModuleFunction(api.GoModuleFunc(func(ctx context.Context, mod api.Module, stack []uint64) {
			if w.kind == KindAsyncify && w.Enter(ctx, mod) {
				return
			}
			r := f(ctx, mod)
			if len(results) > 0 {
				stack[0] = r
			}
		}), nil, results).Export(name)
	}
	fn("rank", i32, func(context.Context, api.Module) uint64 { return uint64(w.cfg.Rank) })
	fn("size", i32, func(context.Context, api.Module) uint64 { return uint64(w.cfg.Size) })
	// pending: bit 0 says a checkpoint is due; the rest counts changes of
	// the worker's inbox, for the SDK's waiting goroutines.
	fn("pending", i64, func(context.Context, api.Module) uint64 {
		w.checkStop()
		p := w.changes.Load() << 1
		if w.pending.Load() {
			p |= 1
		}
		return p
	})
	// event_fd: the fd of the worker's event (wasi.Event), which the host
	// signals when a message arrives, a send window opens, a checkpoint
	// comes due or the guest must stop; -1 if there is none.
	fn("event_fd", i32, func(context.Context, api.Module) uint64 {
		fd, err := w.sys.OpenEvent()
		if err != nil {
			return uint64(math.MaxUint32)
		}
		return uint64(fd)
	})
	fn("yield", nil, func(context.Context, api.Module) uint64 { return 0 })
	// preempt: the call wasmbin.InsertPreemption puts in the guest's loops.
	// Leaving compiled code for it lets the Go runtime stop the guest's
	// goroutine; it is never an asyncify capture point (asyncify did not
	// instrument its call sites), so it only ends a guest that must stop,
	// or has it wait while a capture's copy-on-write pool is full.
	b.NewFunctionBuilder().WithGoModuleFunction(api.GoModuleFunc(func(context.Context, api.Module, []uint64) {
		w.preempts.Add(1)
		w.checkStop()
		w.throttle()
	}), nil, nil).Export(wasmbin.PreemptName)
	// checkpoint: a Go guest's watcher returns "paused" after this call; an
	// asyncify guest unwinds at once (the rewind then returns from here).
	b.NewFunctionBuilder().WithGoModuleFunction(api.GoModuleFunc(func(ctx context.Context, mod api.Module, stack []uint64) {
		if w.kind == KindAsyncify && w.async.rewinding {
			w.Enter(ctx, mod)
			return
		}
		w.RequestCheckpoint()
		if w.kind == KindAsyncify {
			w.Enter(ctx, mod)
		}
	}), nil, nil).Export("checkpoint")
	w.exportMessages(b)
	_, err := b.Instantiate(ctx)
	return err
}
