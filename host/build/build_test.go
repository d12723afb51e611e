package build

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/librahost/librahost/host/wasmbin"
	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"
)

// Each test guest is built once per test run, all at once, by TestMain.
var (
	testDir string
	built   = map[string]*guest{}
)

type guest struct {
	out  string
	wasm []byte
	err  error
	took time.Duration
}

const goMain = `package main

import "fmt"

func main() { fmt.Println("hello from go", 6*7) }
`

// goMainSmall keeps the plain Go module small: asyncify takes a while.
const goMainSmall = `package main

import "os"

func main() { os.Stdout.WriteString("hello from go 42\n") }
`

const goMainSDK = `package main

import (
	"fmt"

	libra "github.com/librahost/librahost/guest-sdk"
)

func main() {
	libra.Yield()
	fmt.Println("hello from go with the SDK, rank", libra.Rank())
}
`

const cMain = `#include <stdio.h>
#include "libra.h"

int main(int argc, char **argv) {
	long s = 0;
	for (int i = 0; i < 1000; i++) {
		s += i;
		if (i % 100 == 0) libra_yield();
	}
	printf("hello from c %ld\n", s);
	return 0;
}
`

const cPart = `int part(int x) { return x * 2; }
`

const cMain2 = `#include <stdio.h>
int part(int);
int main(void) { printf("two files %d\n", part(21)); return 0; }
`

func write(path, text string) {
	if err := writeFile(path, text); err != nil {
		panic(err)
	}
}

func writeFile(path, text string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, []byte(text), 0o644)
}

// TestMain builds the test guests. A missing toolchain fails only the
// tests whose guests need it, each in one line (getGuest).
func TestMain(m *testing.M) {
	os.Exit(testMain(m))
}

func testMain(m *testing.M) int {
	var err error
	if testDir, err = os.MkdirTemp("", "build-test-"); err != nil {
		fmt.Fprintln(os.Stderr, "build tests:", err)
		return 1
	}
	defer os.RemoveAll(testDir)
	if err := setup(); err != nil {
		fmt.Fprintln(os.Stderr, "build tests:", err)
		return 1
	}
	return m.Run()
}

func setup() error {
	d := testDir
	for _, f := range []struct{ path, text string }{
		{"gomod/go.mod", "module example.com/gomod\n\ngo 1.26\n"},
		{"gomod/cmd/hello/main.go", goMain},
		{"gosdk/go.mod", "module gosdk\n\ngo 1.26\n"},
		{"gosdk/main.go", goMainSDK},
		{"nomod/hello/main.go", goMain},
		{"nomod/hello/main_test.go", "package main\n"},
		{"c/hello.c", cMain},
		{"c/main2.c", cMain2},
		{"c/part.c", cPart},
		{"plain/go.mod", "module plain\n\ngo 1.26\n"},
		{"plain/main.go", goMainSmall},
	} {
		if err := writeFile(filepath.Join(d, f.path), f.text); err != nil {
			return err
		}
	}

	cache := filepath.Join(d, "cache")
	jobs := map[string][]string{
		"go":       {filepath.Join(d, "gomod/cmd/hello")},
		"go-sdk":   {filepath.Join(d, "gosdk")},
		"go-nomod": {filepath.Join(d, "nomod/hello")},
		"c":        {filepath.Join(d, "c/hello.c")},
		"c-two":    {filepath.Join(d, "c/main2.c"), filepath.Join(d, "c/part.c")},
		"wasm-go":  {filepath.Join(d, "plain/plain.wasm")},
		"wasm-c":   {filepath.Join(d, "plain/c.wasm")},
	}
	plainErr := makePlainInputs(d)

	var wg sync.WaitGroup
	var mu sync.Mutex
	for name, inputs := range jobs {
		if err := plainErr[name]; err != nil {
			built[name] = &guest{err: fmt.Errorf("making the input module: %w", err)}
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			g := &guest{out: filepath.Join(d, "out", name+".wasm")}
			os.MkdirAll(filepath.Dir(g.out), 0o755)
			var stderr bytes.Buffer
			start := time.Now()
			_, g.err = Build(context.Background(), inputs, Config{Out: g.out, Stderr: &stderr, CacheDir: cache})
			g.took = time.Since(start)
			switch {
			case g.err != nil && stderr.Len() > 0:
				g.err = fmt.Errorf("%w\n%s", g.err, stderr.String())
			case g.err == nil:
				g.wasm, g.err = os.ReadFile(g.out)
			}
			mu.Lock()
			built[name] = g
			mu.Unlock()
		}()
	}
	wg.Wait()
	return nil
}

// makePlainInputs makes the plain command modules used as .wasm inputs, a
// Go build and a clang build. A module that cannot be made is an error in
// its guest's entry, so that only the tests using it fail, in one line.
func makePlainInputs(d string) map[string]error {
	errs := map[string]error{}
	plainGo := exec.Command("go", "build", "-o", "plain.wasm", ".")
	plainGo.Dir = filepath.Join(d, "plain")
	plainGo.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm", "GOWORK=off")
	errs["wasm-go"] = runTool(plainGo)
	tools, err := findClang()
	if err != nil {
		errs["wasm-c"] = err
		return errs
	}
	errs["wasm-c"] = runTool(exec.Command(tools.clang, "--target=wasm32-wasi", "--sysroot="+wasiSysroot, "-O2",
		"-o", filepath.Join(d, "plain/c.wasm"), filepath.Join(d, "c/main2.c"), filepath.Join(d, "c/part.c")))
	return errs
}

// runTool runs cmd; a failure is one line with the command's first line of output.
func runTool(cmd *exec.Cmd) error {
	out, err := cmd.CombinedOutput()
	if err != nil {
		first, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
		return fmt.Errorf("%s: %v: %s", strings.Join(cmd.Args[:min(len(cmd.Args), 2)], " "), err, first)
	}
	return nil
}

func getGuest(t *testing.T, name string) *guest {
	t.Helper()
	g := built[name]
	if g.err != nil {
		t.Fatalf("build %s: %v", name, g.err)
	}
	t.Logf("build %s took %v", name, g.took.Round(time.Millisecond))
	return g
}

func TestBuildKinds(t *testing.T) {
	tests := []struct {
		guest   string
		kind    string
		source  string
		exports []string
		output  string
	}{
		{"go", KindGo, "example.com/gomod/cmd/hello", []string{"_initialize", "libra_run"}, "hello from go 42\n"},
		{"go-sdk", KindGo, "gosdk", []string{"_initialize", "libra_run"}, "hello from go with the SDK, rank 3\n"},
		{"go-nomod", KindGo, "hello", []string{"_initialize", "libra_run"}, "hello from go 42\n"},
		{"c", KindAsyncify, "hello.c", append([]string{"_start"}, asyncifyExports...), "hello from c 499500\n"},
		{"c-two", KindAsyncify, "main2.c part.c", append([]string{"_start"}, asyncifyExports...), "two files 42\n"},
		{"wasm-go", KindAsyncify, "plain.wasm", append([]string{"_start"}, asyncifyExports...), "hello from go 42\n"},
		{"wasm-c", KindAsyncify, "c.wasm", append([]string{"_start"}, asyncifyExports...), "two files 42\n"},
	}
	for _, tt := range tests {
		t.Run(tt.guest, func(t *testing.T) {
			g := getGuest(t, tt.guest)
			m, err := wasmbin.Parse(g.wasm)
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range tt.exports {
				if _, ok := m.Export(e); !ok {
					t.Errorf("no export %s", e)
				}
			}
			info, ok, err := ReadInfo(g.wasm)
			if err != nil || !ok {
				t.Fatalf("ReadInfo: %v %v", ok, err)
			}
			if info.Format != FormatVersion || info.Kind != tt.kind || info.Source != tt.source {
				t.Errorf("info %+v", info)
			}
			if (info.Go != "") != (tt.kind == KindGo) {
				t.Errorf("info.Go %q", info.Go)
			}
			if got := runGuest(t, m, g.wasm, tt.kind); got != tt.output {
				t.Errorf("output %q, want %q", got, tt.output)
			}
		})
	}
}

// runGuest runs a built module in wazero with every libra import stubbed
// (rank returns 3, everything else 0) and returns its stdout.
func runGuest(t *testing.T, m *wasmbin.Module, wasm []byte, kind string) string {
	// No deadline of its own: a loaded machine may take long (go test's
	// -timeout ends a hang).
	ctx := context.Background()
	r := wazero.NewRuntime(ctx)
	defer r.Close(ctx)
	wasi_snapshot_preview1.MustInstantiate(ctx, r)
	hb := r.NewHostModuleBuilder("libra")
	for _, imp := range m.Imports {
		if imp.Module != "libra" {
			continue
		}
		ft, _ := m.ImportFuncType(imp)
		params, results := apiTypes(ft.Params), apiTypes(ft.Results)
		value := uint64(0)
		if imp.Name == "rank" {
			value = 3
		}
		hb.NewFunctionBuilder().WithGoModuleFunction(api.GoModuleFunc(func(ctx context.Context, mod api.Module, stack []uint64) {
			for i := range results {
				stack[i] = value
			}
		}), params, results).Export(imp.Name)
	}
	if _, err := hb.Instantiate(ctx); err != nil {
		t.Fatal(err)
	}
	var stdout bytes.Buffer
	cfg := wazero.NewModuleConfig().WithStdout(&stdout).WithStderr(os.Stderr).WithArgs("guest").
		WithSysNanotime().WithSysWalltime().WithSysNanosleep()
	if kind == KindGo {
		cfg = cfg.WithStartFunctions("_initialize")
	}
	mod, err := r.InstantiateWithConfig(ctx, wasm, cfg)
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	if kind == KindGo {
		res, err := mod.ExportedFunction("libra_run").Call(ctx)
		if err != nil || res[0] != 0 {
			t.Fatalf("libra_run: %v %v", res, err)
		}
	}
	return stdout.String()
}

func apiTypes(ts []wasmbin.ValType) []api.ValueType {
	out := make([]api.ValueType, len(ts))
	for i, t := range ts {
		out[i] = api.ValueType(t)
	}
	return out
}
