package wasmbin

import (
	"context"
	"reflect"
	"testing"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
)

func TestExportMutableGlobals(t *testing.T) {
	out, globals, err := ExportMutableGlobals(sampleModule())
	if err != nil {
		t.Fatal(err)
	}
	want := []Global{
		{Index: 1, Name: "libra.global.1", ValType: I32, Mutable: true},
		{Index: 3, Name: "libra.global.3", ValType: I64, Mutable: true},
	}
	if !reflect.DeepEqual(globals, want) {
		t.Errorf("globals:\n got %+v\nwant %+v", globals, want)
	}
	m, err := Parse(out)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"run", "g2", "libra.global.1", "libra.global.3"} {
		if _, ok := m.Export(name); !ok {
			t.Errorf("export %q missing", name)
		}
	}
	if len(m.Exports) != 4 || len(m.Customs) != 2 || m.Funcs != 1 {
		t.Errorf("module changed beyond its exports: %+v", m)
	}
	again, globals2, err := ExportMutableGlobals(out)
	if err != nil || string(again) != string(out) || !reflect.DeepEqual(globals2, want) {
		t.Errorf("second rewrite changed the module (err %v)", err)
	}
}

// counterModule defines memory, mutable globals 0 (i32 = 7) and 1 (i64 = 9),
// and a function that adds 1 to global 0; it has no export section.
func counterModule() []byte {
	return newModule().
		section(secType, u32(1), raw(0x60, 0, 0)).
		section(secFunction, u32(1), u32(0)).
		section(secMemory, u32(1), raw(0), u32(1)).
		section(secGlobal, u32(2),
			raw(byte(I32), 1, 0x41, 7, 0x0b),
			raw(byte(I64), 1, 0x42, 9, 0x0b)).
		section(secCode, u32(1), u32(9), raw(0, 0x23, 0, 0x41, 1, 0x6a, 0x24, 0, 0x0b)).
		bytes()
}

func TestExportMutableGlobalsWazero(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name string
		in   []byte
	}{
		{"no export section", counterModule()},
		{"with customs", SetCustomSection(counterModule(), "name", nil)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, globals, err := ExportMutableGlobals(tt.in)
			if err != nil {
				t.Fatal(err)
			}
			if len(globals) != 2 {
				t.Fatalf("globals %+v", globals)
			}
			m, _ := Parse(out)
			if len(m.Exports) != 2 {
				t.Fatalf("exports %+v", m.Exports)
			}
			r := wazero.NewRuntime(ctx)
			defer r.Close(ctx)
			mod, err := r.Instantiate(ctx, out)
			if err != nil {
				t.Fatal(err)
			}
			g0 := mod.ExportedGlobal("libra.global.0")
			g1 := mod.ExportedGlobal("libra.global.1")
			if g0 == nil || g1 == nil {
				t.Fatal("globals not exported")
			}
			if g0.Get() != 7 || g1.Get() != 9 || g0.Type() != api.ValueTypeI32 || g1.Type() != api.ValueTypeI64 {
				t.Errorf("globals read %d %d", g0.Get(), g1.Get())
			}
			mg, ok := g0.(api.MutableGlobal)
			if !ok {
				t.Fatal("global 0 not mutable through wazero")
			}
			mg.Set(100)
			if g0.Get() != 100 {
				t.Errorf("set did not stick: %d", g0.Get())
			}
		})
	}
}
