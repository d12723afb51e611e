package tests

import (
	"strings"
	"testing"
	"time"
)

// `librahost run -n 4` runs a job of four workers on this machine.
func TestRunJobSamples(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		src  string
		args []string
		want string
	}{
		{"samples/ring", []string{"-laps", "300"}, "ring of 4: 300 laps, token 1800, every hop checked\n"},
		{"samples/pi", []string{"-darts", "2000000"}, "pi ≈ 3.14"},
		{"samples/pi/c/pi.c", []string{"2000000"}, "pi ~ 3.14"},
	} {
		t.Run(tc.src, func(t *testing.T) {
			t.Parallel()
			wasm := guest(t, tc.src)
			out, stderr, code := lh(t, append([]string{"run", "-n", "4", wasm, "--"}, tc.args...)...)
			if code != 0 || !strings.HasPrefix(out, tc.want) || strings.Count(out, "\n") != 1 {
				t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out, stderr)
			}
			if strings.Contains(out, "workers") && !strings.Contains(out, "on 4 workers") {
				t.Fatalf("stdout: %s", out)
			}
		})
	}
}

// --prefix marks each line with its rank; a job with a state directory
// records its workers, so a resume of the finished job needs no -n.
func TestRunJobFlags(t *testing.T) {
	t.Parallel()
	wasm := guest(t, "samples/ring")
	out, _, code := lh(t, "run", "-n", "3", "--prefix", wasm, "--", "-laps", "10")
	if code != 0 || out != "[0] ring of 3: 10 laps, token 30, every hop checked\n" {
		t.Fatalf("exit %d: %q", code, out)
	}
	state := t.TempDir() + "/st"
	out, stderr, code := lh(t, "run", "-n", "3", "--state", state, "--checkpoint-every", "1s", wasm, "--", "-laps", "10")
	if code != 0 || out != "ring of 3: 10 laps, token 30, every hop checked\n" {
		t.Fatalf("exit %d: %q\n%s", code, out, stderr)
	}
	out, stderr, code = lh(t, "run", "--resume", "--state", state)
	if code != 0 || out != "" || !strings.Contains(stderr, "already finished with exit code 0") {
		t.Fatalf("resume of a finished job: exit %d: %q\n%s", code, out, stderr)
	}
}

// A worker that fails ends the job, even while the others wait in Recv.
func TestRunJobWorkerFails(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		src  string
		code int
		want string
	}{
		{"tests/testdata/trapjob.c", 1, "rank 1: guest trapped"},
		{"tests/testdata/gowait", 1, "rank 1 fails"},
	} {
		t.Run(tc.src, func(t *testing.T) {
			t.Parallel()
			done := make(chan struct{})
			var stderr string
			var code int
			go func() {
				defer close(done)
				_, stderr, code = lh(t, "run", "-n", "3", guest(t, tc.src))
			}()
			select {
			case <-done:
			case <-time.After(60 * time.Second):
				t.Fatal("the job did not end")
			}
			if code != tc.code || !strings.Contains(stderr, tc.want) {
				t.Fatalf("exit %d, stderr:\n%s", code, stderr)
			}
		})
	}
}
