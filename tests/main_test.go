package tests

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
)

var (
	binDir    string // holds the librahost binary and the built guests
	librahost string
)

func TestMain(m *testing.M) {
	code := func() int {
		dir, err := os.MkdirTemp("", "librahost-tests-")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer os.RemoveAll(dir)
		binDir = dir
		librahost = filepath.Join(dir, "librahost")
		cmd := exec.Command("go", "build", "-o", librahost, "../cmd/librahost")
		cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
		if err := cmd.Run(); err != nil {
			fmt.Fprintln(os.Stderr, "build librahost:", err)
			return 1
		}
		return m.Run()
	}()
	os.Exit(code)
}

var (
	guestMu sync.Mutex
	guests  = map[string]string{}
)

// guest builds src (a Go package dir, a .c file or a .wasm module,
// relative to the repository root) once per test run and returns the
// module's path.
func guest(t testing.TB, src string) string {
	t.Helper()
	guestMu.Lock()
	defer guestMu.Unlock()
	if p, ok := guests[src]; ok {
		return p
	}
	_, file, _, _ := runtime.Caller(0)
	root := filepath.Dir(filepath.Dir(file))
	out := filepath.Join(binDir, fmt.Sprintf("guest%d.wasm", len(guests)))
	cmd := exec.Command(librahost, "build", "-o", out, filepath.Join(root, src))
	if b, err := cmd.CombinedOutput(); err != nil {
		if len(b) == 0 {
			b = []byte(err.Error())
		}
		// One line for a missing toolchain, the compiler's lines for a
		// guest that does not compile.
		t.Fatalf("building %s: %s", src, bytes.TrimSpace(b))
	}
	guests[src] = out
	return out
}
