package wasi

import (
	"context"

	"github.com/tetratelabs/wazero/api"
)

// Guests get no sockets: every sock_* call fails with ENOTSUP.
var sockFuncs = []hostFunc{
	{"sock_accept", []api.ValueType{i32, i32, i32}, sockNotsup},
	{"sock_recv", []api.ValueType{i32, i32, i32, i32, i32, i32}, sockNotsup},
	{"sock_send", []api.ValueType{i32, i32, i32, i32, i32}, sockNotsup},
	{"sock_shutdown", []api.ValueType{i32, i32}, sockNotsup},
}

func sockNotsup(*System, context.Context, api.Module, []uint64) errno {
	return errnoNotsup
}
