package wasmbin

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"
)

const goHello = `package main

//go:wasmimport libratest probe
func probe()

func main() {
	println("hello from Go")
	probe()
}
`

var goWasm struct {
	once sync.Once
	b    []byte
	err  error
}

// buildGoHello builds a Go wasip1 command once per test run.
func buildGoHello(t testing.TB) []byte {
	t.Helper()
	goWasm.once.Do(func() {
		dir, err := os.MkdirTemp("", "wasmbin-go")
		if err != nil {
			goWasm.err = err
			return
		}
		defer os.RemoveAll(dir)
		for name, text := range map[string]string{
			"go.mod":  "module hello\n\ngo 1.26\n",
			"main.go": goHello,
		} {
			if goWasm.err = os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); goWasm.err != nil {
				return
			}
		}
		cmd := exec.Command("go", "build", "-o", "hello.wasm", ".")
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm", "GOWORK=off")
		if out, err := cmd.CombinedOutput(); err != nil {
			goWasm.err = &buildError{err, out}
			return
		}
		goWasm.b, goWasm.err = os.ReadFile(filepath.Join(dir, "hello.wasm"))
	})
	if goWasm.err != nil {
		t.Fatal(goWasm.err)
	}
	return goWasm.b
}

type buildError struct {
	err error
	out []byte
}

func (e *buildError) Error() string { return "go build: " + e.err.Error() + "\n" + string(e.out) }

func TestGoModuleGlobals(t *testing.T) {
	in := buildGoHello(t)
	m, err := Parse(in)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := m.Export("_start"); !ok || m.Funcs < 1000 || len(m.Memories) != 1 {
		t.Fatalf("unexpected Go module: %d funcs, memories %+v", m.Funcs, m.Memories)
	}
	out, globals, err := ExportMutableGlobals(in)
	if err != nil {
		t.Fatal(err)
	}
	// SP, CTXT, g, RET0..RET3, PAUSE.
	if len(globals) != 8 || globals[2].Name != "libra.global.2" {
		t.Fatalf("globals %+v", globals)
	}

	ctx := context.Background()
	r := wazero.NewRuntime(ctx)
	defer r.Close(ctx)
	wasi_snapshot_preview1.MustInstantiate(ctx, r)
	var probed, checked bool
	_, err = r.NewHostModuleBuilder("libratest").NewFunctionBuilder().
		WithFunc(func(ctx context.Context, mod api.Module) {
			probed = true
			gv := mod.ExportedGlobal("libra.global.2")
			spv := mod.ExportedGlobal("libra.global.0")
			if gv == nil || spv == nil {
				t.Error("g or SP not exported")
				return
			}
			g, sp := uint32(gv.Get()), uint32(spv.Get())
			lo, ok1 := mod.Memory().ReadUint64Le(g)
			hi, ok2 := mod.Memory().ReadUint64Le(g + 8)
			m, ok3 := mod.Memory().ReadUint64Le(g + 48)
			if g == 0 || !ok1 || !ok2 || !ok3 || !(lo < uint64(sp) && uint64(sp) <= hi) || m == 0 {
				t.Errorf("global 2 is not a goroutine: g=%#x sp=%#x stack=[%#x,%#x] m=%#x", g, sp, lo, hi, m)
				return
			}
			checked = true
		}).Export("probe").Instantiate(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var stdout bytes.Buffer
	_, err = r.InstantiateWithConfig(ctx, out, wazero.NewModuleConfig().WithStdout(&stdout).WithStderr(&stdout))
	if err != nil {
		t.Fatal(err)
	}
	if !probed || !checked || !bytes.Contains(stdout.Bytes(), []byte("hello from Go")) {
		t.Errorf("probed %v checked %v output %q", probed, checked, stdout.String())
	}
}
