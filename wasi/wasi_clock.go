package wasi

import (
	"context"

	"github.com/tetratelabs/wazero/api"
)

// Clock ids.
const (
	clockRealtime         = 0
	clockMonotonic        = 1
	clockProcessCputimeID = 2
	clockThreadCputimeID  = 3
)

var clockFuncs = []hostFunc{
	{"clock_res_get", []api.ValueType{i32, i32}, clockResGet},
	{"clock_time_get", []api.ValueType{i32, i64, i32}, clockTimeGet},
}

func clockResGet(_ *System, _ context.Context, mod api.Module, st []uint64) errno {
	var res uint64
	switch uint32(st[0]) {
	case clockRealtime:
		res = 1000
	case clockMonotonic, clockProcessCputimeID, clockThreadCputimeID:
		res = 1
	default:
		return errnoInval
	}
	if !memWriteU64(mod, uint32(st[1]), res) {
		return errnoFault
	}
	return errnoSuccess
}

func clockTimeGet(s *System, _ context.Context, mod api.Module, st []uint64) errno {
	t, ok := s.clockNow(uint32(st[0]))
	if !ok {
		return errnoInval
	}
	if !memWriteU64(mod, uint32(st[2]), uint64(t)) {
		return errnoFault
	}
	return errnoSuccess
}

// clockNow reads clock id in nanoseconds. CPU-time clocks read monotonic.
func (s *System) clockNow(id uint32) (int64, bool) {
	switch id {
	case clockRealtime:
		return s.walltimeNanos(), true
	case clockMonotonic, clockProcessCputimeID, clockThreadCputimeID:
		return s.nanotime(), true
	}
	return 0, false
}

func (s *System) walltimeNanos() int64 {
	sec, nsec := s.walltime()
	return sec*1e9 + int64(nsec)
}
