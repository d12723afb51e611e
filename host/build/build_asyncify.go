package build

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/librahost/librahost/host/wasmbin"
)

// asyncifyImports makes every libra.* and WASI import a capture point.
const asyncifyImports = "--pass-arg=asyncify-imports@libra.*,wasi_snapshot_preview1.*"

// asyncifyExports are the functions Binaryen's pass adds.
var asyncifyExports = []string{"asyncify_start_unwind", "asyncify_stop_unwind",
	"asyncify_start_rewind", "asyncify_stop_rewind", "asyncify_get_state"}

// wasmFeatures are enabled for modules that carry no target_features
// section (a Go module does not).
var wasmFeatures = []string{"--enable-bulk-memory", "--enable-sign-ext",
	"--enable-nontrapping-float-to-int", "--enable-mutable-globals"}

// asyncify runs wasm-opt's asyncify pass on in, writing work/asyncify.wasm.
func asyncify(ctx context.Context, in, work string, cfg *Config, extra ...string) ([]byte, error) {
	wasmOpt, err := findWasmOpt()
	if err != nil {
		return nil, err
	}
	out := filepath.Join(work, "asyncify.wasm")
	args := append([]string{in, "--asyncify", "-O2", asyncifyImports}, extra...)
	args = append(args, "-o", out)
	if err := run(ctx, "wasm-opt --asyncify", cfg, work, os.Environ(), wasmOpt, args...); err != nil {
		return nil, err
	}
	b, err := os.ReadFile(out)
	if err != nil {
		return nil, fmt.Errorf("build: %v", err)
	}
	if err := requireExports(b, "wasm-opt", append([]string{"_start"}, asyncifyExports...)...); err != nil {
		return nil, err
	}
	return b, nil
}

// buildWasm instruments an existing WASI command module.
func buildWasm(ctx context.Context, path, work string, cfg *Config) ([]byte, Info, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, Info{}, fmt.Errorf("build: %v", err)
	}
	m, err := wasmbin.Parse(b)
	if err != nil {
		return nil, Info{}, fmt.Errorf("build: %s: %v", path, err)
	}
	if _, ok := m.Custom(InfoSection); ok {
		return nil, Info{}, fmt.Errorf("build: %s: %w", path, ErrAlreadyBuilt)
	}
	if _, ok := m.Export("asyncify_start_unwind"); ok {
		return nil, Info{}, fmt.Errorf("build: %s is already instrumented with asyncify", path)
	}
	if _, ok := m.Export("_start"); !ok {
		return nil, Info{}, fmt.Errorf("build: %s: %w", path, ErrNotCommand)
	}
	out, err := asyncify(ctx, path, work, cfg, wasmFeatures...)
	if err != nil {
		return nil, Info{}, err
	}
	return out, Info{Kind: KindAsyncify, Source: filepath.Base(path)}, nil
}
