package tests

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// TestScriptTestNamesMissingToolchain: scripts/test, where it may not
// install (no apt-get, not root, no sudo), says in one line what to install
// instead of running tests that would fail.
func TestScriptTestNamesMissingToolchain(t *testing.T) {
	t.Parallel()
	_, file, _, _ := runtime.Caller(0)
	script := filepath.Join(filepath.Dir(filepath.Dir(file)), "scripts", "test")
	// A PATH with go and what the script needs, but no wasm-opt and no apt-get.
	bin := t.TempDir()
	for _, tool := range []string{"bash", "dirname", "id", "go"} {
		p, err := exec.LookPath(tool)
		if err != nil {
			t.Fatalf("%s: %v", tool, err)
		}
		if err := os.Symlink(p, filepath.Join(bin, tool)); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command(script, "-run", "TestNothing")
	cmd.Env = append(os.Environ(), "PATH="+bin)
	out, err := cmd.CombinedOutput()
	want := "scripts/test: wasm-opt not found: install the guest toolchain as root (apt-get install -y binaryen clang-14 lld-14 wasi-libc libclang-rt-14-dev-wasm32 chromium) and run scripts/test again\n"
	if err == nil || string(out) != want {
		t.Errorf("scripts/test without wasm-opt: %v\n%s\nwant %q", err, out, want)
	}
	if strings.Contains(string(out), "ok ") {
		t.Errorf("tests ran without the toolchain:\n%s", out)
	}
}
