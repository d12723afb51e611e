package tests

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestCheckpointOverhead runs the ticks guest with a checkpoint asked for
// every 100 ms: with a --checkpoint-overhead so small that any pause (a
// microsecond is 100 s of it) holds the next periodic checkpoint back
// past the end of the run, one checkpoint is taken and -v says why no
// other; with off, every tick takes one.
func TestCheckpointOverhead(t *testing.T) {
	t.Parallel()
	wasm := guest(t, "tests/testdata/ticks")
	p := startProc(t, nil, nil, "run", "--state", filepath.Join(t.TempDir(), "st"), "--checkpoint-every", "100ms",
		"--checkpoint-overhead", "0.000001%", wasm, "--", "50")
	if err := p.wait(); err != nil {
		t.Fatalf("run: %v\n%s", err, p.stderr)
	}
	stderr := p.stderr.String()
	if n := len(durableLine.FindAllString(stderr, -1)); n != 1 || !strings.Contains(stderr, "checkpoint 1 held the guest up") {
		t.Fatalf("%d checkpoints taken, want 1 and a line saying why no other:\n%s", n, stderr)
	}

	q := startProc(t, nil, nil, "run", "--state", filepath.Join(t.TempDir(), "st"), "--checkpoint-every", "100ms",
		"--checkpoint-overhead", "off", wasm)
	q.mustDurable(t, 3)
	q.kill()
	if s := q.stderr.String(); strings.Contains(s, "held the guest up") {
		t.Fatalf("a run without a limit held a checkpoint back:\n%s", s)
	}
}
