package tests

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
)

// Go's own standard-library tests of os and io/fs, in -short mode, run
// under `librahost run` through scripts/go_wasip1_exec (scripts/stdlib.sh
// runs the whole list: os io/fs path/filepath io/ioutil bufio archive/tar
// archive/zip testing/fstest).
func TestGoStdlibUnderLibrahost(t *testing.T) {
	t.Parallel()
	_, file, _, _ := runtime.Caller(0)
	script := filepath.Join(filepath.Dir(filepath.Dir(file)), "scripts", "go_wasip1_exec")
	for _, pkg := range []string{"os", "io/fs"} {
		t.Run(pkg, func(t *testing.T) {
			t.Parallel()
			cmd := exec.Command("go", "test", "-count=1", "-short", "-exec", script, pkg)
			cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm", "LIBRAHOST="+librahost)
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("go test %s under librahost: %v\n%s", pkg, err, out)
			}
			t.Logf("%s", out)
		})
	}
}
