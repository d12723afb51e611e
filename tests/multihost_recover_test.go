package tests

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"sync/atomic"
	"testing"
	"time"
)

// A job over three host processes, checkpointed with one replica of each
// rank, survives the death of a host that does not run its coordinator:
// host c is SIGKILLed after the second committed epoch and its --data
// wiped; the hosts left roll back to the newest committed epoch, host a
// restarts c's ranks from the replicas it holds, and the job prints
// byte for byte what the failure-free `run -n 6` prints, also with the
// job links losing, duplicating and reordering frames, and when c dies
// in the middle of a checkpoint's write (a round under way: c's
// segment writes held open by a failpoint once epoch 2 is committed, c
// killed once one waits). Rank 0 is held at its end (-hold) until the
// recovery is done, so the job cannot end before the kill on any
// machine. The coordinator's host logs the time from the loss's
// detection to the ranks' RESUME.
func TestMultiHostRecovery(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, src string
		args      []string
		env       []string // the hosts'
		hold      string   // a failpoint held open on c when it is killed
	}{
		{"heat", "samples/heat", []string{"-steps", "400", "-every", "20"}, nil, ""},
		{"ring", "samples/ring", []string{"-laps", "3000"}, nil, ""},
		{"heat-faults", "samples/heat", []string{"-steps", "60", "-every", "5"}, []string{"LIBRAHOST_FAULTS=drop=0.2,dup=0.1,reorder=0.1"}, ""},
		{"heat-kill-in-write", "samples/heat", []string{"-steps", "400", "-every", "20"}, nil, "segment:write"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			wasm := guest(t, tc.src)
			open, release := holdJob(t)
			args := append([]string{"-hold", "/hold/end"}, tc.args...)
			want := jobRun(t, "6", wasm, append([]string{"--dir", open + ":/hold:ro"}, args...)...)
			cluster := filepath.Join(t.TempDir(), "cluster")
			if _, stderr, code := lh(t, "cluster", "init", cluster, "--hosts", "a b c"); code != 0 {
				t.Fatal(stderr)
			}
			// c's writes go on while the gate exists.
			gate := filepath.Join(t.TempDir(), "gate")
			cEnv := tc.env
			if tc.hold != "" {
				if err := os.WriteFile(gate, nil, 0o644); err != nil {
					t.Fatal(err)
				}
				cEnv = append(slices.Clone(tc.env), "LIBRAHOST_FAILPOINTS="+tc.hold+"=wait("+gate+")")
			}
			hs := append(startHostProcs(t, cluster, tc.env, "a", "b"),
				startHostProc(t, cluster, cEnv, nil, "c", filepath.Join(t.TempDir(), "c")))
			sub := submitBg(t, append([]string{"--cluster", cluster, "--hosts", hostList(hs), "-n", "6", "--failure-timeout", lossTimeout,
				"--checkpoint-every", "100ms", "--replicas", "1", "--dir", release.dir + ":/hold:ro", wasm, "--"}, args...)...)
			w := watchLosses(t, hs[0], sub)
			waitHostLog(t, hs[2], regexp.MustCompile(`epoch 2 committed`), w.done)
			if tc.hold != "" {
				if err := os.Remove(gate); err != nil {
					t.Fatal(err)
				}
				waitHostLog(t, hs[2], regexp.MustCompile(`(?s)epoch 2 committed.*failpoint `+tc.hold+`: waiting`), w.done)
			}
			w.kill(t, hs[2])
			waitHostLog(t, hs[0], regexp.MustCompile(`recovered incarnation 1 in`), w.done)
			release.open(t)
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
			// The job went back to a committed epoch, the second or later
			// (a round under way when c died is dropped).
			e := waitHostLog(t, hs[0], regexp.MustCompile(`host h2 lost: incarnation 1 rolls back to epoch (\d+)\n`), ended)[0][1]
			if n, _ := strconv.Atoi(e); n < 2 {
				t.Fatalf("rolled back to epoch %s, want 2 or later", e)
			}
			m := waitHostLog(t, hs[0], regexp.MustCompile(`recovered incarnation 1 in \d+ ms`), ended)
			t.Log(m[0][0]) // bench/RESULTS.md
		})
	}
}

// A job over four host processes survives two host deaths one after the
// other: host c is SIGKILLed after the second committed epoch (its
// --data wiped), d restarts c's ranks from its replicas; once the
// coordinator says the job recovered and a later epoch is committed
// (its replicas made again on the hosts left), d is SIGKILLed the same
// way and a restarts every rank d ran, c's among them. Rank 0 is held at
// its end until the second recovery is done (its only mount, /hold, is
// read-only). The output is byte for byte the failure-free `run -n 6`'s,
// also with the job links losing, duplicating and reordering frames.
func TestMultiHostSecondRecovery(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name         string
		steps, every string
		env          []string // the hosts'
	}{
		{"heat", "400", "20", nil},
		{"heat-faults", "60", "5", faultsEnv},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			job := newHeldHeat(t, tc.steps, tc.every)
			cluster, hs := startClusterEnv(t, tc.env, "a", "b", "c", "d")
			sub := job.submit(t, cluster, hs, "--failure-timeout", lossTimeout, "--replicas", "1")
			w := watchLosses(t, hs[0], sub)
			waitHostLog(t, hs[2], regexp.MustCompile(`epoch 2 committed`), w.done)
			w.kill(t, hs[2])
			// An epoch committed after the recovery holds replicas made on
			// the hosts left.
			waitHostLog(t, hs[3], regexp.MustCompile(`(?s)incarnation 1: the job rolls back.*epoch \d+ committed`), w.done)
			waitHostLog(t, hs[0], regexp.MustCompile(`(?s)recovered incarnation 1 in \d+ ms.*epoch \d+ committed`), w.done)
			w.kill(t, hs[3])
			waitHostLog(t, hs[0], regexp.MustCompile(`recovered incarnation 2 in`), w.done)
			job.release.open(t)
			<-sub.done
			if sub.err != nil {
				t.Fatalf("hosts c and d killed: submit: %v\n%s", sub.err, sub.errb.Bytes())
			}
			compareOutput(t, sub.out.Bytes(), job.want)
			ended := make(chan struct{})
			close(ended)
			// d took c's rank 2 (it held its replicas), then a took d's
			// ranks, c's among them, from the replicas made after the
			// first recovery.
			waitHostLog(t, hs[0], regexp.MustCompile(`(?s)incarnation 1: ranks on \[a b d d a b\].*incarnation 2: ranks on \[a b a a a b\]`), ended)
			m := waitHostLog(t, hs[0], regexp.MustCompile(`recovered incarnation 2 in \d+ ms`), ended)
			t.Log(m[0][0])
		})
	}
}

// holdJob returns a directory in which heat's and ring's -hold /hold/end
// is already there (for the failure-free run), and a hold whose
// directory, mounted at /hold, keeps rank 0 from ending until open: so
// that no machine runs the job to its end before the test's kills,
// however fast it computes or slowly it checkpoints.
func holdJob(t *testing.T) (string, *jobHold) {
	t.Helper()
	open := t.TempDir()
	if err := os.WriteFile(filepath.Join(open, "end"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	h := &jobHold{dir: t.TempDir()}
	t.Cleanup(func() { h.open(t) }) // a failed test's job ends too
	return open, h
}

type jobHold struct{ dir string }

// lossTimeout is the failure timeout of the tests that kill a host: its
// loss is found that long after the kill (they wait for the coordinator's
// line saying so), and no live host of a machine running these tests in
// parallel is silent for that long (the default 2 s was).
const lossTimeout = "10s"

// open lets the held job end.
func (h *jobHold) open(t *testing.T) {
	if err := os.WriteFile(filepath.Join(h.dir, "end"), nil, 0o644); err != nil {
		t.Error(err)
	}
}

// lossWatch ends the waits of a test whose job is held (holdJob) when the
// coordinator's host h declares lost a host the test did not kill (a
// machine too loaded for the failure timeout), rather than let them wait
// for events the job will never reach until the test binary's timeout.
type lossWatch struct {
	done   chan struct{} // closed when the submitter has exited, or then
	killed atomic.Int32  // the hosts the test killed
	lost   atomic.Value  // the line that closed done, if any
}

var hostLost = regexp.MustCompile(`host h\d+ lost[^\n]*`)

// watchLosses watches h's log until sub exits.
func watchLosses(t *testing.T, h *hostProc, sub *bgSubmit) *lossWatch {
	w := &lossWatch{done: make(chan struct{})}
	go func() {
		defer close(w.done)
		for {
			b, _ := os.ReadFile(h.stderr.Name())
			if m := hostLost.FindAllString(string(b), -1); len(m) > int(w.killed.Load()) {
				w.lost.Store(m[len(m)-1])
				return
			}
			select {
			case <-sub.done:
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	}()
	t.Cleanup(func() {
		if l, ok := w.lost.Load().(string); ok {
			t.Errorf("host %s declared a host lost that the test did not kill (%q): the machine was too loaded for the failure timeout", h.name, l)
		}
	})
	return w
}

// kill loses host h (hostProc.lose), counted.
func (w *lossWatch) kill(t *testing.T, h *hostProc) {
	t.Helper()
	w.killed.Add(1)
	h.lose(t)
}
