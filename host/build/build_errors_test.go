package build

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/librahost/librahost/host/wasmbin"
)

func TestMissingTools(t *testing.T) {
	const clangHint = " (apt-get install clang-14 lld-14 wasi-libc libclang-rt-14-dev-wasm32)"
	tests := []struct {
		missing string
		input   string
		want    string
	}{
		{"clang-14", "c", "build: clang-14 not found: install the Debian package clang-14" + clangHint},
		{"wasm-ld-14", "c", "build: wasm-ld-14 not found: install the Debian package lld-14" + clangHint},
		{"wasm-opt", "c", "build: wasm-opt not found: install the Debian package binaryen (apt-get install binaryen)"},
		{"wasm-opt", "wasm", "build: wasm-opt not found: install the Debian package binaryen (apt-get install binaryen)"},
		{"go", "go", "build: go not found: install Go 1.26 from go.dev"},
		{"wasi-libc", "c", "not found: install the Debian package wasi-libc" + clangHint},
		{"clang-rt", "c", "build: libclang_rt.builtins-wasm32.a not found: install the Debian package libclang-rt-14-dev-wasm32" + clangHint},
	}
	inputs := map[string][]string{
		"c":    {filepath.Join(testDir, "c/hello.c")},
		"go":   {filepath.Join(testDir, "gosdk")},
		"wasm": {filepath.Join(testDir, "plain/c.wasm")},
	}
	for _, tt := range tests {
		t.Run(tt.missing+"/"+tt.input, func(t *testing.T) {
			defer func(lp func(string) (string, error), libc, rt string) {
				lookPath, wasiLibc, clangRTGlob = lp, libc, rt
			}(lookPath, wasiLibc, clangRTGlob)
			lookPath = func(name string) (string, error) {
				if name == tt.missing {
					return "", exec.ErrNotFound
				}
				return exec.LookPath(name)
			}
			switch tt.missing {
			case "wasi-libc":
				wasiLibc = "/nonexistent/libc.a"
			case "clang-rt":
				clangRTGlob = "/nonexistent/*.a"
			}
			_, err := Build(context.Background(), inputs[tt.input], Config{Out: filepath.Join(t.TempDir(), "x.wasm"), CacheDir: t.TempDir()})
			if err == nil || !strings.Contains(err.Error(), tt.want) || !errors.Is(err, ErrToolMissing) {
				t.Errorf("error %v, want %q", err, tt.want)
			}
		})
	}
}

func TestBuildRefuses(t *testing.T) {
	dir := t.TempDir()
	write(filepath.Join(dir, "lib/go.mod"), "module lib\n\ngo 1.26\n")
	write(filepath.Join(dir, "lib/lib.go"), "package lib\n")
	write(filepath.Join(dir, "notwasm.wasm"), "hello")
	write(filepath.Join(dir, "x.txt"), "hello")
	reactor := newReactor()
	if err := os.WriteFile(filepath.Join(dir, "reactor.wasm"), reactor, 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		inputs []string
		out    string
		want   string
	}{
		{"nothing", nil, "", "build: nothing to build"},
		{"go file", []string{filepath.Join(dir, "lib/lib.go")}, "", "give the directory of the Go package"},
		{"text", []string{filepath.Join(dir, "x.txt")}, "", "give a Go package directory, .c files or one .wasm module"},
		{"missing", []string{filepath.Join(dir, "nope")}, "", "no such file"},
		{"two wasm", []string{filepath.Join(dir, "reactor.wasm"), filepath.Join(dir, "reactor.wasm")}, "", "cannot build"},
		{"not main", []string{filepath.Join(dir, "lib")}, "", "is package lib, not a main package"},
		{"not wasm", []string{filepath.Join(dir, "notwasm.wasm")}, "", "not a WebAssembly module (bad magic)"},
		{"reactor", []string{filepath.Join(dir, "reactor.wasm")}, "", "not a WASI command module (no _start export)"},
		{"built twice", []string{getGuest(t, "c").out}, "", "already built by librahost build"},
		{"built go twice", []string{getGuest(t, "go").out}, "", "already built by librahost build"},
		{"overwrite input", []string{filepath.Join(testDir, "plain/c.wasm")}, filepath.Join(testDir, "plain/c.wasm"), "would overwrite the input"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := tt.out
			if out == "" {
				out = filepath.Join(t.TempDir(), "out.wasm")
			}
			_, err := Build(context.Background(), tt.inputs, Config{Out: out, CacheDir: filepath.Join(testDir, "cache")})
			if err == nil || !strings.Contains(err.Error(), tt.want) || strings.Contains(err.Error(), "\n") || !strings.HasPrefix(err.Error(), "build: ") {
				t.Errorf("error %v, want one line with %q", err, tt.want)
			}
		})
	}
}

// newReactor is a module exporting only _initialize.
func newReactor() []byte {
	return []byte{0, 'a', 's', 'm', 1, 0, 0, 0,
		1, 4, 1, 0x60, 0, 0, // type () -> ()
		3, 2, 1, 0, // one function
		7, 15, 1, 11, '_', 'i', 'n', 'i', 't', 'i', 'a', 'l', 'i', 'z', 'e', 0, 0,
		10, 4, 1, 2, 0, 0x0b}
}

func TestDefaultOut(t *testing.T) {
	tests := []struct {
		kind   inputType
		inputs []string
		want   string
	}{
		{inputGo, []string{"samples/sieve"}, "sieve.wasm"},
		{inputGo, []string{"samples/sieve/"}, "sieve.wasm"},
		{inputC, []string{"a/nbody.c", "b/x.c"}, "nbody.wasm"},
		{inputWasm, []string{"dir/app.wasm"}, "app.libra.wasm"},
	}
	for _, tt := range tests {
		if got := defaultOut(tt.kind, tt.inputs); got != tt.want {
			t.Errorf("defaultOut(%v) = %q, want %q", tt.inputs, got, tt.want)
		}
	}
}

func TestReadInfo(t *testing.T) {
	plain := newReactor()
	tests := []struct {
		name    string
		in      []byte
		ok      bool
		wantErr string
		want    Info
	}{
		{"none", plain, false, "", Info{}},
		{"good", withInfo(plain, Info{Kind: KindGo, Go: "go1.26.8", Source: "x"}), true, "", Info{Format: 1, Kind: KindGo, Go: "go1.26.8", Source: "x"}},
		{"bad json", wasmbin.SetCustomSection(plain, InfoSection, []byte("{")), false, "build: bad librahost.build section", Info{}},
		{"future", wasmbin.SetCustomSection(plain, InfoSection, []byte(`{"format":9}`)), false, "has format 9", Info{}},
		{"not wasm", []byte("nope"), false, "bad magic", Info{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			info, ok, err := ReadInfo(tt.in)
			if ok != tt.ok || info != tt.want || (err == nil) != (tt.wantErr == "") || (err != nil && !strings.Contains(err.Error(), tt.wantErr)) {
				t.Errorf("ReadInfo = %+v %v %v", info, ok, err)
			}
		})
	}
}

func TestGoWorkVersion(t *testing.T) {
	tests := []struct{ in, want, err string }{
		{"go1.26.8", "1.26.8", ""},
		{"go1.27", "1.27", ""},
		{"devel go1.27-abc", "1.26", ""},
		{"go1.25.3", "", "build: go1.25.3 is too old: install Go 1.26 from go.dev"},
	}
	for _, tt := range tests {
		got, err := goWorkVersion(tt.in)
		if got != tt.want || (err == nil) != (tt.err == "") || (err != nil && err.Error() != tt.err) {
			t.Errorf("goWorkVersion(%q) = %q, %v", tt.in, got, err)
		}
	}
}

// TestPlainInputsWithoutClang: without clang-14 the test setup reports the
// missing tool for the one guest that needs it instead of panicking.
func TestPlainInputsWithoutClang(t *testing.T) {
	defer func(lp func(string) (string, error)) { lookPath = lp }(lookPath)
	lookPath = func(name string) (string, error) {
		if name == "clang-14" {
			return "", exec.ErrNotFound
		}
		return exec.LookPath(name)
	}
	errs := makePlainInputs(testDir)
	if err := errs["wasm-go"]; err != nil {
		t.Errorf("wasm-go: %v", err)
	}
	err := errs["wasm-c"]
	if !errors.Is(err, ErrToolMissing) || strings.Contains(err.Error(), "\n") {
		t.Errorf("wasm-c: %v, want one line naming the missing clang-14", err)
	}
}
