package wasi

import (
	"context"
	"io"

	"github.com/tetratelabs/wazero/api"
)

var randomFuncs = []hostFunc{
	{"random_get", []api.ValueType{i32, i32}, randomGet},
}

func randomGet(s *System, _ context.Context, mod api.Module, st []uint64) errno {
	buf, ok := memRead(mod, uint32(st[0]), uint32(st[1]))
	if !ok {
		return errnoFault
	}
	s.releaseMem(buf)
	if _, err := io.ReadFull(s.rand, buf); err != nil {
		return errnoIo
	}
	return errnoSuccess
}
