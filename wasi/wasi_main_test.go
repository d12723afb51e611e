package wasi

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/sys"
)

// guestWasm is the test guest (testdata/guest), built once per test run.
var (
	guestWasm  []byte
	guestCache wazero.CompilationCache
)

func TestMain(m *testing.M) {
	os.Exit(testMain(m))
}

func testMain(m *testing.M) int {
	if p := os.Getenv("WASI_TEST_GUEST"); p != "" {
		// A child process of a test: the parent built the guest.
		var err error
		if guestWasm, err = os.ReadFile(p); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		guestCache = openGuestCache()
		return m.Run()
	}
	dir, err := os.MkdirTemp("", "wasi-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	out := filepath.Join(dir, "guest.wasm")
	cmd := exec.Command("go", "build", "-o", out, "./testdata/guest")
	cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm")
	if b, err := cmd.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "building test guest: %v\n%s", err, b)
		return 1
	}
	if guestWasm, err = os.ReadFile(out); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	guestPath = out
	guestCache = openGuestCache()
	return m.Run()
}

// guestPath is where the guest was built, for child processes.
var guestPath string

func openGuestCache() wazero.CompilationCache {
	if cd, err := os.UserCacheDir(); err == nil {
		c, err := wazero.NewCompilationCacheWithDir(filepath.Join(cd, "librahost", "wasi-test-wazero"))
		if err == nil {
			return c
		}
	}
	return wazero.NewCompilationCache()
}

type guestResult struct {
	stdout, stderr string
	exit           uint32
	err            error // a failure other than an exit
}

// runGuest runs the test guest with cfg; it fills Stdout and Stderr.
func runGuest(t *testing.T, cfg Config) guestResult {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cfg.Stdout, cfg.Stderr = &stdout, &stderr
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	return runSystem(t, s, &stdout, &stderr)
}

func runSystem(t *testing.T, s *System, stdout, stderr *bytes.Buffer) guestResult {
	t.Helper()
	ctx := context.Background()
	r := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfig().WithCompilationCache(guestCache))
	defer r.Close(ctx)
	if err := s.Instantiate(ctx, r); err != nil {
		t.Fatal(err)
	}
	mod, err := r.CompileModule(ctx, guestWasm)
	if err != nil {
		t.Fatal(err)
	}
	_, err = r.InstantiateModule(ctx, mod, wazero.NewModuleConfig())
	res := guestResult{stdout: stdout.String(), stderr: stderr.String()}
	var ee *sys.ExitError
	switch {
	case errors.As(err, &ee):
		res.exit = ee.ExitCode()
	case err != nil:
		res.err = err
	}
	return res
}
