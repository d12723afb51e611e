package wasi

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// stdlibPackages are the standard-library packages whose tests exercise
// files; testdata/stdlib.sh runs them all.
var stdlibPackages = []string{"os", "io/fs", "path/filepath", "io/ioutil", "bufio",
	"archive/tar", "archive/zip", "testing/fstest"}

// runStdlib runs go test for pkgs as wasip1 guests on this package
// (testdata/runner as go test -exec).
func runStdlib(t *testing.T, pkgs []string, flags ...string) {
	runner := filepath.Join(t.TempDir(), "runner")
	if out, err := exec.Command("go", "build", "-o", runner, "./testdata/runner").CombinedOutput(); err != nil {
		t.Fatalf("building runner: %v\n%s", err, out)
	}
	for _, pkg := range pkgs {
		t.Run(pkg, func(t *testing.T) {
			args := append([]string{"test", "-exec", runner}, flags...)
			cmd := exec.Command("go", append(args, pkg)...)
			cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm")
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("%v\n%s", err, out)
			}
		})
	}
}

// TestStdlib runs the tests of every package in stdlibPackages. It takes
// minutes, so it runs only with LIBRAHOST_WASI_STDLIB=1.
func TestStdlib(t *testing.T) {
	if os.Getenv("LIBRAHOST_WASI_STDLIB") != "1" {
		t.Skip("set LIBRAHOST_WASI_STDLIB=1 to run")
	}
	runStdlib(t, stdlibPackages)
}

// TestStdlibShort runs the os and io/fs tests in -short mode (skipped
// itself with -short).
func TestStdlibShort(t *testing.T) {
	if testing.Short() {
		t.Skip("runs Go's os and io/fs tests")
	}
	t.Parallel()
	runStdlib(t, []string{"os", "io/fs"}, "-short")
}
