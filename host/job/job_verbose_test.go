package job

import (
	"bytes"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/librahost/librahost/host/dirty"
)

// run -v says which capture ran: copy-on-write where it can be used,
// stop-and-copy where not (LIBRAHOST_COW=off: the test runs itself again
// so).
func TestVerboseCaptureKind(t *testing.T) {
	module := filepath.Join(t.TempDir(), "mem.wasm")
	if err := os.WriteFile(module, testGuest(t, "../testdata/mem"), 0o644); err != nil {
		t.Fatal(err)
	}
	want := "(copy-on-write)"
	if os.Getenv("LIBRAHOST_COW") == "off" || dirty.SupportedCOW() != nil {
		want = "(stop-and-copy)"
	}
	var log bytes.Buffer
	code, err := Run(context.Background(), Config{
		ModulePath: module, Args: []string{"mem", "8", "1", "3", "ckpt"},
		StateDir: t.TempDir(), Verbose: true, Log: &log, Stdout: io.Discard, Stderr: io.Discard,
	})
	if err != nil || code != 0 {
		t.Fatalf("run: %d %v\n%s", code, err, log.String())
	}
	lines := 0
	for _, l := range strings.Split(log.String(), "\n") {
		if strings.Contains(l, " durable: ") {
			lines++
			if !strings.Contains(l, want) {
				t.Fatalf("checkpoint line %q does not say %s", l, want)
			}
		}
	}
	if lines < 3 {
		t.Fatalf("%d checkpoint lines in\n%s", lines, log.String())
	}
	if os.Getenv("LIBRAHOST_COW") != "off" {
		cmd := exec.Command(os.Args[0], "-test.run=^TestVerboseCaptureKind$", "-test.count=1")
		cmd.Env = append(os.Environ(), "LIBRAHOST_COW=off")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("with LIBRAHOST_COW=off: %v\n%s", err, out)
		}
	}
}
