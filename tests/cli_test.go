package tests

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// lh runs librahost and returns its stdout, stderr and exit code.
func lh(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	return lhIn(t, "", args...)
}

// lhIn runs librahost in directory dir ("" for the test's own).
func lhIn(t *testing.T, dir string, args ...string) (string, string, int) {
	t.Helper()
	return lhEnvIn(t, dir, nil, args...)
}

// lhEnv is lh with env added to librahost's environment (never
// t.Setenv, which tests running in parallel cannot call).
func lhEnv(t *testing.T, env []string, args ...string) (string, string, int) {
	t.Helper()
	return lhEnvIn(t, "", env, args...)
}

func lhEnvIn(t *testing.T, dir string, env []string, args ...string) (string, string, int) {
	t.Helper()
	var out, errb bytes.Buffer
	cmd := exec.Command(librahost, args...)
	cmd.Dir = dir
	if env != nil {
		cmd.Env = append(os.Environ(), env...)
	}
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return out.String(), errb.String(), code
}

// oneLineError checks that stderr is exactly one line naming want.
func oneLineError(t *testing.T, stderr, want string) {
	t.Helper()
	if strings.Count(stderr, "\n") != 1 || !strings.Contains(stderr, want) {
		t.Fatalf("want one line containing %q, got:\n%s", want, stderr)
	}
	if strings.Contains(stderr, "goroutine ") || strings.Contains(stderr, "panic:") {
		t.Fatalf("a Go panic reached the user:\n%s", stderr)
	}
}

func TestRunNotWasm(t *testing.T) {
	t.Parallel()
	p := filepath.Join(t.TempDir(), "x.wasm")
	os.WriteFile(p, []byte("#!/bin/sh\necho hello\n"), 0o644)
	_, stderr, code := lh(t, "run", p)
	if code != 1 {
		t.Fatalf("exit %d", code)
	}
	oneLineError(t, stderr, "not a WebAssembly module")
}

func TestRunTrap(t *testing.T) {
	t.Parallel()
	out, stderr, code := lh(t, "run", guest(t, "tests/testdata/trap.c"))
	if code != 1 || out != "before the trap\n" {
		t.Fatalf("exit %d, stdout %q", code, out)
	}
	oneLineError(t, stderr, "trapped")
}

func TestRunExitCode(t *testing.T) {
	t.Parallel()
	out, _, code := lh(t, "run", guest(t, "tests/testdata/exit3.c"))
	if code != 3 || out != "exiting with 3\n" {
		t.Fatalf("exit %d, stdout %q", code, out)
	}
}

// plainWasm builds testdata/plain as an ordinary wasip1 command at path.
func plainWasm(t *testing.T, path string) {
	t.Helper()
	cmd := exec.Command("go", "build", "-o", path, ".")
	cmd.Dir = "testdata/plain"
	cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%v\n%s", err, b)
	}
}

// plainCWasm compiles the C file src with clang-14 alone into a plain
// WASI module at path: a small module, quick to instrument.
func plainCWasm(t *testing.T, src, path string) {
	t.Helper()
	cmd := exec.Command("clang-14", "--target=wasm32-wasi", "--sysroot=/usr", "-O2", "-o", path, src)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%v\n%s", err, b)
	}
}

// Inputs and outputs given as relative paths, as the README's examples
// give them, are taken against the current directory for every kind of
// input. (The existing module is a small plain C one: instrumenting a
// plain Go build takes far longer and shows nothing more here.)
func TestBuildRelativePaths(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	plainCWasm(t, "testdata/exit3.c", filepath.Join(dir, "plain.wasm"))
	copyFile(t, "testdata/exit3.c", filepath.Join(dir, "exit3.c"))
	os.Mkdir(filepath.Join(dir, "pkg"), 0o755)
	copyFile(t, "testdata/plain/main.go", filepath.Join(dir, "pkg", "main.go"))
	copyFile(t, "testdata/plain/go.mod", filepath.Join(dir, "pkg", "go.mod"))
	os.Mkdir(filepath.Join(dir, "out"), 0o755)
	for _, tc := range []struct {
		args []string
		out  string // the module written, relative to dir
		runs string // what it prints
		code int
	}{
		{[]string{"-o", "out/w.wasm", "plain.wasm"}, "out/w.wasm", "exiting with 3\n", 3},
		{[]string{"plain.wasm"}, "plain.libra.wasm", "exiting with 3\n", 3},
		{[]string{"-o", "out/c.wasm", "exit3.c"}, "out/c.wasm", "exiting with 3\n", 3},
		{[]string{"./pkg", "-o", "out/g.wasm"}, "out/g.wasm", "plain module ran\n", 0},
	} {
		stdout, stderr, code := lhIn(t, dir, append([]string{"build"}, tc.args...)...)
		if code != 0 || stdout != tc.out+"\n" {
			t.Fatalf("build %v: exit %d, stdout %q\n%s", tc.args, code, stdout, stderr)
		}
		stdout, stderr, code = lhIn(t, dir, "run", tc.out)
		if code != tc.code || stdout != tc.runs {
			t.Fatalf("run %s: exit %d, stdout %q\n%s", tc.out, code, stdout, stderr)
		}
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err == nil {
		err = os.WriteFile(to, b, 0o644)
	}
	if err != nil {
		t.Fatal(err)
	}
}

func TestPlainModule(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	wasm := filepath.Join(dir, "plain.wasm")
	plainWasm(t, wasm)
	out, stderr, code := lh(t, "run", wasm)
	if code != 0 || out != "plain module ran\n" {
		t.Fatalf("exit %d, stdout %q", code, out)
	}
	oneLineError(t, stderr, "cannot be checkpointed")
	_, stderr, code = lh(t, "run", "--checkpoint-every", "1s", "--state", filepath.Join(dir, "st"), wasm)
	if code != 1 {
		t.Fatalf("checkpointing a plain module: exit %d", code)
	}
	oneLineError(t, stderr, "cannot be checkpointed")
}

// A state dir that holds an unfinished run is not started over by
// accident, and is not resumed with another module.
func TestUnfinishedRun(t *testing.T) {
	t.Parallel()
	wasm := guest(t, "tests/testdata/timer")
	state := filepath.Join(t.TempDir(), "st")
	p := startProc(t, nil, nil, "run", "--state", state, "--checkpoint-every", "100ms", wasm)
	p.mustDurable(t, 1)
	p.kill()
	_, stderr, code := lh(t, "run", "--state", state, wasm)
	if code != 1 {
		t.Fatalf("exit %d", code)
	}
	oneLineError(t, stderr, "use --resume")
	_, stderr, code = lh(t, "run", "--resume", "--state", state, guest(t, "tests/testdata/fdtable"))
	if code != 1 {
		t.Fatalf("exit %d", code)
	}
	oneLineError(t, stderr, "another module")
	out, stderr, code := lh(t, "run", "--resume", "--state", state, wasm)
	if code != 0 || !strings.Contains(out, "tick 39 ok=true") {
		t.Fatalf("resume: exit %d\n%s\n%s", code, out, stderr)
	}
}

// waitEpoch waits until the run in state has a durable checkpoint epoch
// ≥ k (0: until the run is recorded), as its run record says. A run
// started with startProc waits on its report instead (mustDurable), which
// also notices a run that ended first.
func waitEpoch(t *testing.T, state string, k uint64) {
	t.Helper()
	const patience = 5 * time.Minute // a hang, however loaded the machine
	for deadline := time.Now().Add(patience); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if b, err := os.ReadFile(filepath.Join(state, "run.json")); err == nil {
			var rec struct {
				Epoch uint64 `json:"last_epoch"`
			}
			if json.Unmarshal(b, &rec) == nil && rec.Epoch >= k {
				return
			}
		}
	}
	t.Fatalf("no checkpoint %d in %s after %v", k, state, patience)
}
