package host

import (
	"encoding/binary"
	"reflect"
	"runtime"
	"unsafe"

	"github.com/tetratelabs/wazero/api"
)

// The guest's preemption counter (wasmbin.PreemptCounterName), as
// wazero's compiled code keeps it: a global the module defines lives in
// its module context, a byte slice (moduleEngine.opaque) that the code
// reads and writes at fixed offsets, and that api.MutableGlobal.Set
// writes too. The copy-on-write handler stores zero there when the pool
// fills (dirty.Tracker.ZeroWhenFull), before the guest goes on from its
// fault; a goroutine calling Set would come too late (see there).
//
// Finding it leans on wazero's internals (ModuleInstance.Engine, and the
// compiler's moduleEngine.opaque), so it checks what it finds: the slice
// must hold the counter's value at one offset and only there, through two
// values set with Set. With another wazero (or its interpreter) that does
// not hold, the word is not found and the pool is kept only at the
// guest's own preemption calls. TestPreemptCounterWord checks it for the
// wazero in go.mod.

// counterWord returns the 32-bit word where the compiled code of mod keeps
// global g, pinned until unpin is called; nil if it cannot be found. Call
// it before the guest runs: it sets g (and puts its value back).
func counterWord(mod api.Module, g api.MutableGlobal) (word *uint32, unpin func()) {
	opaque, ok := moduleContext(mod)
	if !ok || g == nil {
		return nil, nil
	}
	old := g.Get()
	defer g.Set(old)
	at := -1
	for _, v := range []uint64{0x5eed_c0de, 0x0dd_ba11} {
		g.Set(v)
		for i := 0; i+8 <= len(opaque); i += 8 {
			if binary.LittleEndian.Uint64(opaque[i:]) != v {
				continue
			}
			if at >= 0 && at != i {
				return nil, nil // more than one place: not a counter's
			}
			at = i
		}
		if at < 0 {
			return nil, nil
		}
	}
	var pin runtime.Pinner
	pin.Pin(&opaque[0])
	return (*uint32)(unsafe.Pointer(&opaque[at])), pin.Unpin
}

// moduleContext returns the module context of a module compiled by
// wazero's compiler, false if mod is not one.
func moduleContext(mod api.Module) (b []byte, ok bool) {
	defer func() {
		if recover() != nil { // a layout other than expected
			b, ok = nil, false
		}
	}()
	v := reflect.ValueOf(mod)
	if v.Kind() != reflect.Pointer || v.Elem().Kind() != reflect.Struct {
		return nil, false
	}
	e := v.Elem().FieldByName("Engine")
	if e.Kind() != reflect.Interface || e.IsNil() || e.Elem().Kind() != reflect.Pointer || e.Elem().Elem().Kind() != reflect.Struct {
		return nil, false
	}
	o := e.Elem().Elem().FieldByName("opaque")
	if o.Kind() != reflect.Slice || o.Type().Elem().Kind() != reflect.Uint8 || o.Len() < 8 {
		return nil, false
	}
	return unsafe.Slice((*byte)(o.UnsafePointer()), o.Len()), true
}
