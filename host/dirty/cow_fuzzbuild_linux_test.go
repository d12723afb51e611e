//go:build linux

package dirty

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// The copy-on-write handler's nosplit chain still fits the linker's
// limit when the package is built as go test -fuzz builds it: with
// -d=libfuzzer, which instruments every comparison with a call and grows
// every frame. Were it over, no package that imports this one could be
// fuzzed ("nosplit stack over 792 byte limit").
func TestCOWFuzzBuild(t *testing.T) {
	gocmd, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command to build with:", err)
	}
	const pkg = "github.com/librahost/librahost/host/dirty"
	cmd := exec.CommandContext(t.Context(), gocmd, "test", "-c", "-o", os.DevNull,
		"-gcflags="+pkg+"=-d=libfuzzer", pkg)
	out, err := cmd.CombinedOutput()
	if strings.Contains(string(out), "nosplit stack over") {
		t.Fatalf("the handler's nosplit chain is over the limit under fuzz instrumentation:\n%s", out)
	}
	if err != nil {
		t.Fatalf("%v: %v\n%s", cmd, err, out)
	}
}
