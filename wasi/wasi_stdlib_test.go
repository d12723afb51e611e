package wasi

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// TestStdlib runs Go's standard-library tests for file packages as wasip1
// guests on this package (testdata/runner as go test -exec). It takes
// minutes, so it runs only with LIBRAHOST_WASI_STDLIB=1.
func TestStdlib(t *testing.T) {
	if os.Getenv("LIBRAHOST_WASI_STDLIB") != "1" {
		t.Skip("set LIBRAHOST_WASI_STDLIB=1 to run")
	}
	runner := filepath.Join(t.TempDir(), "runner")
	if out, err := exec.Command("go", "build", "-o", runner, "./testdata/runner").CombinedOutput(); err != nil {
		t.Fatalf("building runner: %v\n%s", err, out)
	}
	for _, pkg := range []string{"os", "io/fs", "path/filepath", "io/ioutil", "bufio", "archive/tar", "archive/zip"} {
		t.Run(pkg, func(t *testing.T) {
			cmd := exec.Command("go", "test", "-exec", runner, pkg)
			cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm")
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("%v\n%s", err, out)
			}
		})
	}
}
