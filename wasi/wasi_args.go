package wasi

import (
	"context"

	"github.com/tetratelabs/wazero/api"
)

var argsFuncs = []hostFunc{
	{"args_get", []api.ValueType{i32, i32}, argsGet},
	{"args_sizes_get", []api.ValueType{i32, i32}, argsSizesGet},
}

func argsGet(s *System, _ context.Context, mod api.Module, st []uint64) errno {
	return stringsGet(mod, s.args, uint32(st[0]), uint32(st[1]))
}

func argsSizesGet(s *System, _ context.Context, mod api.Module, st []uint64) errno {
	return sizesGet(mod, s.args, uint32(st[0]), uint32(st[1]))
}
