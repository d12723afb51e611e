package build

import (
	"bytes"
	"context"
	"testing"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"
)

// TestAsyncifyCapturePoint checks that libra.yield is a capture point of a
// built C module: the first call unwinds the whole stack to the host, which
// rewinds it into the same instance, and the program ends as if nothing
// had happened.
func TestAsyncifyCapturePoint(t *testing.T) {
	g := getGuest(t, "c")
	ctx := context.Background()
	r := wazero.NewRuntime(ctx)
	defer r.Close(ctx)
	wasi_snapshot_preview1.MustInstantiate(ctx, r)

	const (
		stateNormal    = 0
		stateUnwinding = 1
		stateRewinding = 2
	)
	var dataAddr uint32
	unwinds, yields := 0, 0
	call := func(mod api.Module, name string, args ...uint64) uint64 {
		res, err := mod.ExportedFunction(name).Call(ctx, args...)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if len(res) > 0 {
			return res[0]
		}
		return 0
	}
	_, err := r.NewHostModuleBuilder("libra").NewFunctionBuilder().
		WithFunc(func(ctx context.Context, mod api.Module) {
			yields++
			if call(mod, "asyncify_get_state") == stateRewinding {
				call(mod, "asyncify_stop_rewind")
				return
			}
			if unwinds == 0 {
				unwinds++
				// The asyncify data lives in a page the host adds at the top
				// of memory: {start, end} and then the saved stack.
				pages, ok := mod.Memory().Grow(1)
				if !ok {
					t.Fatal("grow failed")
				}
				dataAddr = pages * 65536
				mod.Memory().WriteUint32Le(dataAddr, dataAddr+8)
				mod.Memory().WriteUint32Le(dataAddr+4, dataAddr+65536)
				call(mod, "asyncify_start_unwind", uint64(dataAddr))
			}
		}).Export("yield").Instantiate(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var stdout bytes.Buffer
	mod, err := r.InstantiateWithConfig(ctx, g.wasm,
		wazero.NewModuleConfig().WithStdout(&stdout).WithStartFunctions())
	if err != nil {
		t.Fatal(err)
	}
	call(mod, "_start")
	if unwinds != 1 || call(mod, "asyncify_get_state") != stateUnwinding || stdout.Len() != 0 {
		t.Fatalf("no unwind: unwinds %d output %q", unwinds, stdout.String())
	}
	call(mod, "asyncify_stop_unwind")
	used, _ := mod.Memory().ReadUint32Le(dataAddr)
	if used <= dataAddr+8 {
		t.Errorf("unwind saved nothing")
	}
	call(mod, "asyncify_start_rewind", uint64(dataAddr))
	call(mod, "_start")
	if got := stdout.String(); got != "hello from c 499500\n" || yields != 11 {
		t.Errorf("after rewind: output %q, %d yields", got, yields)
	}
}
