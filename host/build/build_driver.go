package build

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/librahost/librahost/host/wasmbin"
)

// Config configures Build. The zero value builds with the defaults.
type Config struct {
	// Out is the output module; "" means <name>.wasm in the current
	// directory (<name>.libra.wasm for a .wasm input).
	Out string
	// Stderr receives the toolchain's own output (compiler errors);
	// nil discards it.
	Stderr io.Writer
	// Progress, when a terminal, shows a spinner and the time elapsed
	// while a toolchain step (go build, clang, wasm-opt) takes longer
	// than a second; nil or anything else shows nothing.
	Progress io.Writer
	// CacheDir holds the guest SDK written out for builds; "" means
	// librahost/build under the user's cache directory.
	CacheDir string
	// GoFlags are extra flags for go build, such as -trimpath.
	GoFlags []string
	// Plain builds the same program without capture, as an ordinary WASI
	// command module that librahost runs but cannot checkpoint: the
	// baseline of run-time comparisons.
	Plain bool
}

func (c *Config) setDefaults() {
	if c.Stderr == nil {
		c.Stderr = io.Discard
	}
	if c.CacheDir == "" {
		if d, err := os.UserCacheDir(); err == nil {
			c.CacheDir = filepath.Join(d, "librahost", "build")
		} else {
			c.CacheDir = filepath.Join(os.TempDir(), "librahost-build")
		}
	}
}

// Build builds inputs, one Go package directory, one or more .c files or one
// WASI command .wasm, into a module librahost can checkpoint, and returns
// the path of the module written.
func Build(ctx context.Context, inputs []string, cfg Config) (out string, err error) {
	cfg.setDefaults()
	kind, err := inputKind(inputs)
	if err != nil {
		return "", err
	}
	// The toolchains run in other directories (wasm-opt in the work
	// directory, go in the package's): they get absolute paths.
	abs, err := absPaths(inputs)
	if err != nil {
		return "", err
	}
	work, err := os.MkdirTemp("", "librahost-build-")
	if err != nil {
		return "", fmt.Errorf("build: %v", err)
	}
	defer os.RemoveAll(work)

	var wasm []byte
	var info Info
	switch kind {
	case inputGo:
		wasm, info, err = buildGo(ctx, abs[0], work, &cfg)
	case inputC:
		wasm, info, err = buildC(ctx, abs, work, &cfg)
	default:
		wasm, info, err = buildWasm(ctx, abs[0], work, &cfg)
	}
	if err != nil {
		return "", err
	}
	out = cfg.Out
	if out == "" {
		out = defaultOut(kind, inputs)
	}
	if !cfg.Plain {
		wasm = withInfo(wasm, info)
	}
	if err := writeOut(out, wasm, inputs); err != nil {
		return "", err
	}
	return out, nil
}

// absPaths returns paths made absolute against the current directory.
func absPaths(paths []string) ([]string, error) {
	out := make([]string, len(paths))
	for i, p := range paths {
		a, err := filepath.Abs(p)
		if err != nil {
			return nil, fmt.Errorf("build: %v", err)
		}
		out[i] = a
	}
	return out, nil
}

type inputType int

const (
	inputGo inputType = iota
	inputC
	inputWasm
)

func inputKind(inputs []string) (inputType, error) {
	if len(inputs) == 0 {
		return 0, fmt.Errorf("build: nothing to build: %w", ErrUnknownInput)
	}
	allC := true
	for _, in := range inputs {
		allC = allC && strings.HasSuffix(in, ".c")
	}
	switch {
	case allC:
		for _, in := range inputs {
			if _, err := os.Stat(in); err != nil {
				return 0, fmt.Errorf("build: %v", err)
			}
		}
		return inputC, nil
	case len(inputs) > 1:
		return 0, fmt.Errorf("build: cannot build %s: %w", strings.Join(inputs, " "), ErrUnknownInput)
	case strings.HasSuffix(inputs[0], ".go"):
		return 0, fmt.Errorf("build: give the directory of the Go package, not %s", inputs[0])
	}
	fi, err := os.Stat(inputs[0])
	switch {
	case err != nil:
		return 0, fmt.Errorf("build: %v", err)
	case fi.IsDir():
		return inputGo, nil
	case strings.HasSuffix(inputs[0], ".wasm"):
		return inputWasm, nil
	}
	return 0, fmt.Errorf("build: cannot build %s: %w", inputs[0], ErrUnknownInput)
}

func defaultOut(kind inputType, inputs []string) string {
	switch kind {
	case inputGo:
		abs, err := filepath.Abs(inputs[0])
		if err != nil || filepath.Base(abs) == string(filepath.Separator) {
			return "main.wasm"
		}
		return filepath.Base(abs) + ".wasm"
	case inputC:
		return strings.TrimSuffix(filepath.Base(inputs[0]), ".c") + ".wasm"
	}
	return strings.TrimSuffix(filepath.Base(inputs[0]), ".wasm") + ".libra.wasm"
}

// writeOut writes the module through a temporary file in the same
// directory, never over one of the inputs.
func writeOut(out string, wasm []byte, inputs []string) error {
	if outAbs, err := filepath.Abs(out); err == nil {
		for _, in := range inputs {
			if inAbs, err := filepath.Abs(in); err == nil && inAbs == outAbs {
				return fmt.Errorf("build: output %s would overwrite the input", out)
			}
		}
	}
	if _, err := wasmbin.Parse(wasm); err != nil {
		return fmt.Errorf("build: toolchain produced a bad module: %v", err)
	}
	f, err := os.CreateTemp(filepath.Dir(out), ".librahost-out-*.wasm")
	if err != nil {
		return fmt.Errorf("build: %v", err)
	}
	defer os.Remove(f.Name())
	_, err = f.Write(wasm)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(f.Name(), 0o644)
	}
	if err == nil {
		err = os.Rename(f.Name(), out)
	}
	if err != nil {
		return fmt.Errorf("build: writing %s: %v", out, err)
	}
	return nil
}

// requireExports checks that a toolchain's output exports names.
func requireExports(wasm []byte, step string, names ...string) error {
	m, err := wasmbin.Parse(wasm)
	if err != nil {
		return fmt.Errorf("build: %s produced a bad module: %v", step, err)
	}
	for _, n := range names {
		if _, ok := m.Export(n); !ok {
			return fmt.Errorf("build: %s output does not export %s", step, n)
		}
	}
	return nil
}
