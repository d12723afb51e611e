package wasi

import (
	"context"

	"github.com/tetratelabs/wazero/api"
)

// Guests get no sockets: every sock_* call fails with EBADF for an fd that
// is not open and ENOTSOCK for any other, as no fd is a socket.
var sockFuncs = []hostFunc{
	{"sock_accept", []api.ValueType{i32, i32, i32}, sockNone},
	{"sock_recv", []api.ValueType{i32, i32, i32, i32, i32, i32}, sockNone},
	{"sock_send", []api.ValueType{i32, i32, i32, i32, i32}, sockNone},
	{"sock_shutdown", []api.ValueType{i32, i32}, sockNone},
}

func sockNone(s *System, _ context.Context, _ api.Module, st []uint64) errno {
	if _, ok := s.fds.get(uint32(st[0])); !ok {
		return errnoBadf
	}
	return errnoNotsock
}
