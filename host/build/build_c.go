package build

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// buildC compiles C files with clang-14 against Debian's wasi-libc and runs
// the asyncify pass on the result.
func buildC(ctx context.Context, files []string, work string, cfg *Config) ([]byte, Info, error) {
	tools, err := findClang()
	if err != nil {
		return nil, Info{}, err
	}
	if _, err := findWasmOpt(); err != nil {
		return nil, Info{}, err
	}
	sdk, err := writeSDK(cfg.CacheDir)
	if err != nil {
		return nil, Info{}, fmt.Errorf("build: writing the guest SDK: %v", err)
	}
	// Debian's clang runs wasm-opt from its own directory or PATH after
	// linking, which breaks exported mutable globals: run it from a
	// directory that holds only clang and the linker.
	bin := filepath.Join(work, "bin")
	if err := os.Mkdir(bin, 0o755); err != nil {
		return nil, Info{}, fmt.Errorf("build: %v", err)
	}
	for name, target := range map[string]string{"clang-14": tools.clang, "wasm-ld-14": tools.wasmLD, "wasm-ld": tools.wasmLD} {
		if err := os.Symlink(target, filepath.Join(bin, name)); err != nil {
			return nil, Info{}, fmt.Errorf("build: %v", err)
		}
	}
	linked := filepath.Join(work, "clang.wasm")
	args := []string{"--target=wasm32-wasi", "--sysroot=" + wasiSysroot, "-O2", "-I" + sdk}
	args = append(args, files...)
	args = append(args, "-o", linked)
	env := setEnv(os.Environ(), "PATH="+bin)
	if err := run(ctx, "clang-14", cfg, "", env, filepath.Join(bin, "clang-14"), args...); err != nil {
		return nil, Info{}, err
	}
	if cfg.Plain {
		b, err := os.ReadFile(linked)
		if err != nil {
			return nil, Info{}, fmt.Errorf("build: %v", err)
		}
		return b, Info{}, nil
	}
	out, err := asyncify(ctx, linked, work, cfg)
	if err != nil {
		return nil, Info{}, err
	}
	names := make([]string, len(files))
	for i, f := range files {
		names[i] = filepath.Base(f)
	}
	return out, Info{Kind: KindAsyncify, Source: strings.Join(names, " ")}, nil
}
