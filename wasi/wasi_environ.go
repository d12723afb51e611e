package wasi

import (
	"context"

	"github.com/tetratelabs/wazero/api"
)

var environFuncs = []hostFunc{
	{"environ_get", []api.ValueType{i32, i32}, environGet},
	{"environ_sizes_get", []api.ValueType{i32, i32}, environSizesGet},
}

func environGet(s *System, _ context.Context, mod api.Module, st []uint64) errno {
	return stringsGet(mod, s.env, uint32(st[0]), uint32(st[1]))
}

func environSizesGet(s *System, _ context.Context, mod api.Module, st []uint64) errno {
	return sizesGet(mod, s.env, uint32(st[0]), uint32(st[1]))
}
