package wasi

import (
	"context"

	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/sys"
)

var procFuncs = []hostFunc{
	{"proc_raise", []api.ValueType{i32}, procRaise},
}

// procExit ends the guest with sys.ExitError carrying its exit code.
func (s *System) procExit(ctx context.Context, mod api.Module, stack []uint64) {
	if s.hooks != nil && s.hooks.Enter(ctx, mod) {
		return
	}
	code := uint32(stack[0])
	_ = mod.CloseWithExitCode(ctx, code)
	panic(sys.NewExitError(code))
}

func procRaise(*System, context.Context, api.Module, []uint64) errno {
	return errnoNosys
}
