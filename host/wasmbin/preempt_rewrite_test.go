package wasmbin

import (
	"context"
	"errors"
	"os"
	"testing"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
)

// preemptCalls instantiates module b (with env.log and libra.preempt) and
// calls each of calls; it returns their results, what env.log got, and
// how often libra.preempt was called.
type preemptRun struct {
	results  map[string]uint64
	logged   []uint32
	preempts int
	names    map[string]string // export -> the function's name in the name section
}

func runPreemptModule(t *testing.T, b []byte, calls map[string]uint64) preemptRun {
	t.Helper()
	ctx := context.Background()
	r := wazero.NewRuntime(ctx)
	defer r.Close(ctx)
	run := preemptRun{results: map[string]uint64{}, names: map[string]string{}}
	_, err := r.NewHostModuleBuilder("env").NewFunctionBuilder().
		WithFunc(func(v uint32) { run.logged = append(run.logged, v) }).Export("log").Instantiate(ctx)
	if err != nil {
		t.Fatal(err)
	}
	_, err = r.NewHostModuleBuilder(PreemptModule).NewFunctionBuilder().
		WithFunc(func() { run.preempts++ }).Export(PreemptName).Instantiate(ctx)
	if err != nil {
		t.Fatal(err)
	}
	mod, err := r.Instantiate(ctx, b)
	if err != nil {
		t.Fatal(err)
	}
	for name, arg := range calls {
		f := mod.ExportedFunction(name)
		res, err := f.Call(ctx, arg)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		run.results[name] = res[0]
		run.names[name] = f.Definition().Name()
	}
	return run
}

// The rewritten module computes what the original does, through calls,
// call_indirect of table elements and of a global's ref.func, a start
// function and exports, and calls the import as often as its budget says.
func TestInsertPreemption(t *testing.T) {
	in, err := os.ReadFile("testdata/preempt.wasm")
	if err != nil {
		t.Fatal(err)
	}
	calls := map[string]uint64{"fib": 15, "run": 1000, "fref": 41, "twice": 21, "sum": 100}
	want := runPreemptModule(t, in, calls)
	if want.results["fib"] != 610 || want.results["sum"] != 5050 || len(want.logged) != 1 {
		t.Fatalf("the original module computes %v, logs %v", want.results, want.logged)
	}
	for _, tt := range []struct {
		budget int32
		min    int // preempt calls at least
	}{
		{DefaultPreemptBudget, 0},
		{1, 1973 + 1000}, // every fib call, every iteration of run's loop
		{100, 10},
	} {
		out, err := InsertPreemption(in, tt.budget)
		if err != nil {
			t.Fatal(err)
		}
		got := runPreemptModule(t, out, calls)
		for name, v := range want.results {
			if got.results[name] != v {
				t.Errorf("budget %d: %s = %d, want %d", tt.budget, name, got.results[name], v)
			}
			if got.names[name] != want.names[name] {
				t.Errorf("budget %d: %s is called %q in the name section, want %q", tt.budget, name, got.names[name], want.names[name])
			}
		}
		if len(got.logged) != 1 || got.logged[0] != 7 {
			t.Errorf("budget %d: start function logged %v", tt.budget, got.logged)
		}
		if got.preempts < tt.min {
			t.Errorf("budget %d: %d preempt calls, want at least %d", tt.budget, got.preempts, tt.min)
		}
		m, err := Parse(out)
		if err != nil {
			t.Fatal(err)
		}
		if m.ImportedFuncs != 2 || m.Imports[len(m.Imports)-1].Name != PreemptName {
			t.Errorf("imports %+v", m.Imports)
		}
		again, err := InsertPreemption(out, tt.budget)
		if err != nil || string(again) != string(out) {
			t.Errorf("a second rewrite changed the module (%v)", err)
		}
	}
}

// A module without import, global or export sections gets them, in order, and a
// type () -> () for the import and (): (i32, i64) for its function's block.
func TestInsertPreemptionNewSections(t *testing.T) {
	b := newModule().
		section(secType, u32(1), raw(0x60, 1, byte(I32), 2, byte(I32), byte(I64))).
		section(secFunction, u32(1), u32(0)).
		section(secCode, u32(1), u32(9), raw(0, 0x03, 0x40, 0x0b, 0x41, 1, 0x42, 2, 0x0b)).
		bytes()
	out, err := InsertPreemption(b, 5)
	if err != nil {
		t.Fatal(err)
	}
	m, err := Parse(out)
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Types) != 3 || m.ImportedFuncs != 1 || len(m.Globals) != 1 || !m.Globals[0].Mutable {
		t.Fatalf("rewritten module %+v", m)
	}
	if len(m.Exports) != 1 || m.Exports[0] != (Export{Name: PreemptCounterName, Kind: KindGlobal, Index: 0}) {
		t.Fatalf("exports %+v, want the counter's", m.Exports)
	}
	ctx := context.Background()
	r := wazero.NewRuntime(ctx)
	defer r.Close(ctx)
	if _, err := r.CompileModule(ctx, out); err != nil {
		t.Fatal(err)
	}
}

// The host may set the exported counter to zero: the guest then calls the
// import at its next check, once, and goes on with a full budget. In a
// function whose loop calls others the counter is the global itself
// (run); a loop that calls nothing takes it into a local at the function's
// entry (sum).
func TestPreemptCounterExport(t *testing.T) {
	in, err := os.ReadFile("testdata/preempt.wasm")
	if err != nil {
		t.Fatal(err)
	}
	out, err := InsertPreemption(in, DefaultPreemptBudget)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	r := wazero.NewRuntime(ctx)
	defer r.Close(ctx)
	if _, err := r.NewHostModuleBuilder("env").NewFunctionBuilder().WithFunc(func(uint32) {}).Export("log").Instantiate(ctx); err != nil {
		t.Fatal(err)
	}
	preempts := 0
	if _, err := r.NewHostModuleBuilder(PreemptModule).NewFunctionBuilder().
		WithFunc(func() { preempts++ }).Export(PreemptName).Instantiate(ctx); err != nil {
		t.Fatal(err)
	}
	mod, err := r.Instantiate(ctx, out)
	if err != nil {
		t.Fatal(err)
	}
	counter, ok := mod.ExportedGlobal(PreemptCounterName).(api.MutableGlobal)
	if !ok {
		t.Fatalf("no mutable global exported as %q", PreemptCounterName)
	}
	if v := counter.Get(); v == 0 || v > DefaultPreemptBudget {
		t.Fatalf("counter %d, want at most the budget %d", v, DefaultPreemptBudget)
	}
	for _, name := range []string{"run", "sum"} {
		for _, zero := range []bool{false, true, false} {
			if zero {
				counter.Set(0)
			}
			before := preempts
			if _, err := mod.ExportedFunction(name).Call(ctx, 1000); err != nil {
				t.Fatal(err)
			}
			if want := btoi(zero); preempts-before != want {
				t.Errorf("%s with the counter set to zero: %v: %d preempt calls, want %d", name, zero, preempts-before, want)
			}
		}
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

func TestInsertPreemptionErrors(t *testing.T) {
	tests := []struct {
		name string
		in   []byte
	}{
		{"not wasm", []byte("hello")},
		{"bad opcode", newModule().section(secType, u32(1), raw(0x60, 0, 0)).section(secFunction, u32(1), u32(0)).
			section(secCode, u32(1), u32(3), raw(0, 0xff, 0x0b)).bytes()},
		{"no end", newModule().section(secType, u32(1), raw(0x60, 0, 0)).section(secFunction, u32(1), u32(0)).
			section(secCode, u32(1), u32(2), raw(0, 0x01)).bytes()},
		{"trailing", newModule().section(secType, u32(1), raw(0x60, 0, 0)).section(secFunction, u32(1), u32(0)).
			section(secCode, u32(1), u32(3), raw(0, 0x0b, 0x01)).bytes()},
		{"bad element", newModule().section(secElement, u32(1), u32(9)).bytes()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := InsertPreemption(tt.in, 0)
			if err == nil {
				t.Fatal("no error")
			}
			if !errors.Is(err, ErrNotWasm) && !errors.Is(err, ErrMalformed) {
				t.Errorf("error %v is neither ErrNotWasm nor ErrMalformed", err)
			}
		})
	}
}

// BenchmarkInsertPreemption rewrites a Go command (about 1.4 MB of code):
// what loading a Go guest costs on top of compiling it.
func BenchmarkInsertPreemption(b *testing.B) {
	in := buildGoHello(b)
	b.SetBytes(int64(len(in)))
	for b.Loop() {
		if _, err := InsertPreemption(in, 0); err != nil {
			b.Fatal(err)
		}
	}
}
