package job

import (
	"bytes"
	"context"
	"io"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/librahost/librahost/host/dirty"
)

// run -v says which capture ran: copy-on-write where it can be used (a
// memory of at least host's 16 MiB floor for it), stop-and-copy where not
// (LIBRAHOST_COW=off: the test runs itself again so).
func TestVerboseCaptureKind(t *testing.T) {
	module := testModuleFile(t, "../testdata/mem")
	want := "(copy-on-write)"
	if os.Getenv("LIBRAHOST_COW") == "off" || dirty.SupportedCOW() != nil {
		want = "(stop-and-copy)"
	}
	var log bytes.Buffer
	code, err := Run(context.Background(), Config{
		ModulePath: module, Args: []string{"mem", "24", "1", "3", "ckpt"},
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

// run -n -v says, for each rank and checkpoint, how long the rank stood
// still and how long of it was its own capture.
func TestVerbosePauseByRank(t *testing.T) {
	module := testModuleFile(t, "../testdata/mem")
	var log bytes.Buffer
	const n = 3
	code, err := Run(context.Background(), Config{
		ModulePath: module, N: n, Args: []string{"mem", "8", "1", "3", "ckpt"},
		StateDir: t.TempDir(), Verbose: true, Log: &log, Stdout: io.Discard, Stderr: io.Discard,
	})
	if err != nil || code != 0 {
		t.Fatalf("run: %d %v\n%s", code, err, log.String())
	}
	seen := map[string]bool{}
	re := regexp.MustCompile(`checkpoint \d+: rank (\d+) pause (\S+), own capture (\S+)`)
	for _, m := range re.FindAllStringSubmatch(log.String(), -1) {
		pause, err1 := time.ParseDuration(m[2])
		capture, err2 := time.ParseDuration(m[3])
		if err1 != nil || err2 != nil || capture <= 0 || pause < capture {
			t.Fatalf("line %q: want a pause no shorter than a positive capture", m[0])
		}
		seen[m[1]] = true
	}
	if len(seen) != n {
		t.Fatalf("pause lines for ranks %v, want all %d:\n%s", seen, n, log.String())
	}
}
