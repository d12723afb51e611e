package build

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/librahost/librahost/host/wasmbin"
)

// Plain builds are ordinary WASI commands: no build info, no asyncify, and
// they print what the capture builds print.
func TestBuildPlain(t *testing.T) {
	for _, tc := range []struct {
		name   string
		inputs []string
		output string
	}{
		{"go", []string{filepath.Join(testDir, "gomod/cmd/hello")}, "hello from go 42\n"},
		{"c", []string{filepath.Join(testDir, "c/hello.c")}, "hello from c 499500\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "plain.wasm")
			if _, err := Build(context.Background(), tc.inputs, Config{Out: out, CacheDir: filepath.Join(testDir, "cache"), Plain: true}); err != nil {
				t.Fatal(err)
			}
			wasm := readFile(t, out)
			if _, ok, _ := ReadInfo(wasm); ok {
				t.Fatal("a plain build carries build info")
			}
			m, err := wasmbin.Parse(wasm)
			if err != nil {
				t.Fatal(err)
			}
			if _, ok := m.Export("_start"); !ok {
				t.Fatal("no _start")
			}
			if _, ok := m.Export("asyncify_start_unwind"); ok {
				t.Fatal("a plain build went through asyncify")
			}
			if got := runGuest(t, m, wasm, ""); got != tc.output {
				t.Fatalf("output %q, want %q", got, tc.output)
			}
		})
	}
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
