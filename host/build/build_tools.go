package build

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/librahost/librahost/host/progress"
)

const debianClang = "install the Debian package %s (apt-get install clang-14 lld-14 wasi-libc libclang-rt-14-dev-wasm32)"

// Where Debian's packages put what the C build needs.
var (
	wasiSysroot  = "/usr"
	wasiHeader   = "/usr/include/wasm32-wasi/stdio.h"
	wasiLibc     = "/usr/lib/wasm32-wasi/libc.a"
	clangRTGlob  = "/usr/lib/llvm-14/lib/clang/*/lib/wasi/libclang_rt.builtins-wasm32.a"
	lookPath     = exec.LookPath
	goToolHint   = "install Go 1.26 from go.dev"
	binaryenHint = "install the Debian package binaryen (apt-get install binaryen)"
)

func findGo() (string, error) {
	p, err := lookPath("go")
	if err != nil {
		return "", &ToolError{Tool: "go", Hint: goToolHint}
	}
	return p, nil
}

func findWasmOpt() (string, error) {
	p, err := lookPath("wasm-opt")
	if err != nil {
		return "", &ToolError{Tool: "wasm-opt", Hint: binaryenHint}
	}
	return p, nil
}

// clangTools are the resolved paths of clang-14 and wasm-ld-14.
type clangTools struct{ clang, wasmLD string }

func findClang() (clangTools, error) {
	var t clangTools
	var err error
	if t.clang, err = lookPath("clang-14"); err != nil {
		return t, &ToolError{Tool: "clang-14", Hint: fmt.Sprintf(debianClang, "clang-14")}
	}
	if t.wasmLD, err = lookPath("wasm-ld-14"); err != nil {
		return t, &ToolError{Tool: "wasm-ld-14", Hint: fmt.Sprintf(debianClang, "lld-14")}
	}
	for _, f := range []string{wasiHeader, wasiLibc} {
		if _, err := os.Stat(f); err != nil {
			return t, &ToolError{Tool: f, Hint: fmt.Sprintf(debianClang, "wasi-libc")}
		}
	}
	if m, _ := filepath.Glob(clangRTGlob); len(m) == 0 {
		return t, &ToolError{Tool: "libclang_rt.builtins-wasm32.a", Hint: fmt.Sprintf(debianClang, "libclang-rt-14-dev-wasm32")}
	}
	return t, nil
}

// run runs a toolchain command. Its output goes to cfg.Stderr, a spinner
// labelled step to cfg.Progress while it runs (progress draws it after a
// second, on a terminal only), and a failure is returned as a one-line
// StepError.
func run(ctx context.Context, step string, cfg *Config, dir string, env []string, name string, args ...string) error {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.Env = env
	stderr := cfg.Stderr
	if stderr == nil {
		stderr = io.Discard
	}
	bar := progress.New(cfg.Progress, step, 0)
	defer bar.Done()
	if cfg.Progress != nil {
		stderr = bar.Above(stderr)
	}
	cmd.Stdout = stderr
	cmd.Stderr = stderr
	if err := cmd.Run(); err != nil {
		return &StepError{Step: step, Err: err}
	}
	return nil
}

// output runs a command and returns its trimmed standard output.
func output(ctx context.Context, step string, dir string, env []string, name string, args ...string) (string, error) {
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.Env = env
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		msg := strings.TrimSpace(stderr.String())
		if i := strings.IndexByte(msg, '\n'); i >= 0 {
			msg = msg[:i]
		}
		if msg != "" {
			err = fmt.Errorf("%v: %s", err, msg)
		}
		return "", &StepError{Step: step, Err: err}
	}
	return strings.TrimSpace(string(out)), nil
}

// setEnv returns env with each "K=V" in kv replacing any earlier K.
func setEnv(env []string, kv ...string) []string {
	out := make([]string, 0, len(env)+len(kv))
	for _, e := range env {
		k, _, _ := strings.Cut(e, "=")
		keep := true
		for _, s := range kv {
			if sk, _, _ := strings.Cut(s, "="); sk == k {
				keep = false
				break
			}
		}
		if keep {
			out = append(out, e)
		}
	}
	return append(out, kv...)
}
