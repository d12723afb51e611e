package tests

import (
	"os"
	"path/filepath"
	"regexp"
	"testing"
)

// A job over three host processes, checkpointed with one replica of each
// rank, survives the death of a host that does not run its coordinator:
// host c is SIGKILLed after the second committed epoch and its --data
// wiped; the hosts left roll back to the newest committed epoch, host a
// restarts c's ranks from the replicas it holds, and the job prints
// byte for byte what the failure-free `run -n 6` prints, also with the
// job links losing, duplicating and reordering frames. The coordinator's
// host logs the time from the loss's detection to the ranks' RESUME.
func TestMultiHostRecovery(t *testing.T) {
	for _, tc := range []struct {
		name, src string
		args      []string
		env       []string // the hosts'
	}{
		{"heat", "samples/heat", []string{"-steps", "400", "-every", "20"}, nil},
		{"ring", "samples/ring", []string{"-laps", "3000"}, nil},
		{"heat-faults", "samples/heat", []string{"-steps", "60", "-every", "5"}, []string{"LIBRAHOST_FAULTS=drop=0.2,dup=0.1,reorder=0.1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wasm := guest(t, tc.src)
			want := jobRun(t, "6", wasm, tc.args...)
			cluster := filepath.Join(t.TempDir(), "cluster")
			if _, stderr, code := lh(t, "cluster", "init", cluster, "--hosts", "a b c"); code != 0 {
				t.Fatal(stderr)
			}
			hs := startHostProcs(t, cluster, tc.env, "a", "b", "c")
			sub := submitBg(t, append([]string{"--cluster", cluster, "--hosts", hostList(hs), "-n", "6",
				"--checkpoint-every", "100ms", "--replicas", "1", wasm, "--"}, tc.args...)...)
			waitHostLog(t, hs[2], regexp.MustCompile(`epoch 2 committed`), sub.done)
			hs[2].sigkill()
			if err := os.RemoveAll(hs[2].data); err != nil {
				t.Fatal(err)
			}
			<-sub.done
			if sub.err != nil {
				t.Fatalf("host c killed: submit: %v\n%s", sub.err, sub.errb.Bytes())
			}
			compareOutput(t, sub.out.Bytes(), want)
			// Host a took c's ranks 2 and 5 (it holds their replicas), and
			// its coordinator saw every rank run again.
			ended := make(chan struct{})
			close(ended)
			waitHostLog(t, hs[0], regexp.MustCompile(`incarnation 1: ranks on \[a b a a b a\]`), ended)
			m := waitHostLog(t, hs[0], regexp.MustCompile(`recovered incarnation 1 in \d+ ms`), ended)
			t.Log(m[0][0]) // bench/RESULTS.md
		})
	}
}
