package wasi

import (
	"context"
	"encoding/binary"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
)

// ModuleName is the import module implemented by System.
const ModuleName = "wasi_snapshot_preview1"

const (
	i32 = api.ValueTypeI32
	i64 = api.ValueTypeI64
)

var le = binary.LittleEndian

// hostFunc is one import returning an errno.
type hostFunc struct {
	name   string
	params []api.ValueType
	fn     func(s *System, ctx context.Context, mod api.Module, stack []uint64) errno
}

// hostFuncs lists every preview1 function except proc_exit.
func hostFuncs() []hostFunc {
	var fs []hostFunc
	for _, group := range [][]hostFunc{
		argsFuncs, environFuncs, clockFuncs, randomFuncs, procFuncs, schedFuncs,
		sockFuncs, pollFuncs, fdFuncs, pathFuncs,
	} {
		fs = append(fs, group...)
	}
	return fs
}

// Instantiate instantiates the wasi_snapshot_preview1 module bound to s in r.
// A System serves one guest, so it can be instantiated once.
func (s *System) Instantiate(ctx context.Context, r wazero.Runtime) error {
	if s.closed {
		return ErrClosed
	}
	if s.instantiated {
		return ErrInstantiated
	}
	b := r.NewHostModuleBuilder(ModuleName)
	for _, f := range hostFuncs() {
		b.NewFunctionBuilder().
			WithGoModuleFunction(s.wrap(f), f.params, []api.ValueType{i32}).
			Export(f.name)
	}
	b.NewFunctionBuilder().
		WithGoModuleFunction(api.GoModuleFunc(s.procExit), []api.ValueType{i32}, nil).
		Export("proc_exit")
	if _, err := b.Instantiate(ctx); err != nil {
		return err
	}
	s.instantiated = true
	return nil
}

// wrap adapts f to wazero, calling Hooks.Enter first.
func (s *System) wrap(f hostFunc) api.GoModuleFunc {
	fn := f.fn
	return func(ctx context.Context, mod api.Module, stack []uint64) {
		if s.hooks != nil && s.hooks.Enter(ctx, mod) {
			stack[0] = 0
			return
		}
		e := fn(s, ctx, mod, stack)
		stack[0] = uint64(e)
	}
}

// unwound reports that the import must return at once: poll_oneoff and
// blocking reads call it when interrupted.
type unwound struct{}

func (unwound) Error() string { return "wasi: unwinding" }

// mem helpers: every guest pointer is checked; a bad one is EFAULT.

func memRead(mod api.Module, off, n uint32) ([]byte, bool) {
	return mod.Memory().Read(off, n)
}

// releaseMem tells the host that the kernel is about to write into b, a
// view of guest memory (Config.Release).
func (s *System) releaseMem(b []byte) {
	if s.release != nil {
		s.release(b)
	}
}

func memWriteU32(mod api.Module, off, v uint32) bool {
	return mod.Memory().WriteUint32Le(off, v)
}

func memWriteU64(mod api.Module, off uint32, v uint64) bool {
	return mod.Memory().WriteUint64Le(off, v)
}

// iovecs reads n iovec entries at iovs and returns views into guest memory.
func iovecs(mod api.Module, iovs, n uint32) ([][]byte, errno) {
	raw, ok := memRead(mod, iovs, n*8)
	if !ok || n > 1<<28 {
		return nil, errnoFault
	}
	out := make([][]byte, 0, n)
	for i := uint32(0); i < n; i++ {
		p := le.Uint32(raw[i*8:])
		l := le.Uint32(raw[i*8+4:])
		b, ok := memRead(mod, p, l)
		if !ok {
			return nil, errnoFault
		}
		out = append(out, b)
	}
	return out, errnoSuccess
}

// stringsGet implements args_get and environ_get.
func stringsGet(mod api.Module, list [][]byte, ptrs, buf uint32) errno {
	total := uint32(0)
	for _, a := range list {
		total += uint32(len(a)) + 1
	}
	pb, ok := memRead(mod, ptrs, uint32(len(list))*4)
	if !ok {
		return errnoFault
	}
	bb, ok := memRead(mod, buf, total)
	if !ok {
		return errnoFault
	}
	at := uint32(0)
	for i, a := range list {
		le.PutUint32(pb[i*4:], buf+at)
		copy(bb[at:], a)
		bb[at+uint32(len(a))] = 0
		at += uint32(len(a)) + 1
	}
	return errnoSuccess
}

// sizesGet implements args_sizes_get and environ_sizes_get.
func sizesGet(mod api.Module, list [][]byte, countPtr, sizePtr uint32) errno {
	total := uint32(0)
	for _, a := range list {
		total += uint32(len(a)) + 1
	}
	if !memWriteU32(mod, countPtr, uint32(len(list))) || !memWriteU32(mod, sizePtr, total) {
		return errnoFault
	}
	return errnoSuccess
}
