package tests

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// copyTree copies the regular files of directory src into dst.
func copyTree(t *testing.T, src, dst string) {
	t.Helper()
	ents, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(dst, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, e.Name()), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// sameFiles fails unless the files of the directories got (together)
// are those of want, byte for byte.
func sameFiles(t *testing.T, want string, got ...string) {
	t.Helper()
	files := map[string][]byte{}
	for _, d := range got {
		ents, _ := os.ReadDir(d)
		for _, e := range ents {
			if _, dup := files[e.Name()]; dup {
				t.Fatalf("%s written on two hosts", e.Name())
			}
			files[e.Name()], _ = os.ReadFile(filepath.Join(d, e.Name()))
		}
	}
	ents, err := os.ReadDir(want)
	if err != nil || len(ents) != len(files) {
		t.Fatalf("%d files written over the hosts, want %d (%v)", len(files), len(ents), err)
	}
	for _, e := range ents {
		b, _ := os.ReadFile(filepath.Join(want, e.Name()))
		if g, ok := files[e.Name()]; !ok || string(g) != string(b) {
			t.Fatalf("%s differs from the failure-free run's (%d bytes, want %d)", e.Name(), len(g), len(b))
		}
	}
}

// samples/wordcount over three host processes with six workers reads
// its input from a read-only --dir that each host holds a copy of, and
// writes its result files into a read-write --dir of each host (relative
// paths, from each host's working directory): its output, and the
// result files of all hosts together, are byte for byte those of `run
// -n 6`. A job whose read-only input differs on one host, or whose
// directory is missing on one, is refused in one line naming the host.
func TestMultiHostDirs(t *testing.T) {
	t.Parallel()
	wasm := guest(t, "samples/wordcount")
	input := filepath.Join(wordcountInput(t, wasm, "12"), "in")
	wantOut := t.TempDir()
	args := []string{"-in", "/in", "-out", "/out"}
	want, stderr, code := lh(t, append([]string{"run", "-n", "6", "--dir", input + ":/in:ro", "--dir", wantOut + ":/out", wasm, "--"}, args...)...)
	if code != 0 || !strings.HasPrefix(want, "wordcount: 12 files, 60000 words, ") {
		t.Fatalf("run -n 6: exit %d\n%s%s", code, want, stderr)
	}
	cluster := filepath.Join(t.TempDir(), "cluster")
	hs, cwds := wordcountHosts(t, cluster, input, nil, "a", "b", "c")
	submit := append([]string{"submit", "--cluster", cluster, "--hosts", hostList(hs), "-n", "6",
		"--dir", "in:/in:ro", "--dir", "out:/out", wasm, "--"}, args...)
	out, stderr, code := lh(t, submit...)
	if code != 0 {
		t.Fatalf("submit: exit %d\n%s", code, stderr)
	}
	compareOutput(t, []byte(out), []byte(want))
	var outs []string
	for _, d := range cwds {
		outs = append(outs, filepath.Join(d, "out"))
	}
	sameFiles(t, wantOut, outs...)

	// One word more in host c's copy of an input file.
	f := filepath.Join(cwds[2], "in", "text-0003.txt")
	b, err := os.ReadFile(f)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(f, append(b, " extra"...), 0o644); err != nil {
		t.Fatal(err)
	}
	_, stderr, code = lh(t, submit...)
	if code != 1 {
		t.Fatalf("input differs on host c: exit %d\n%s", code, stderr)
	}
	oneLineError(t, stderr, "--dir in:/in:ro: the read-only input differs between host a and host c")
	// No out directory on host b.
	if err := os.WriteFile(f, b, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(outs[1]); err != nil {
		t.Fatal(err)
	}
	_, stderr, code = lh(t, submit...)
	if code != 1 {
		t.Fatalf("no out on host b: exit %d\n%s", code, stderr)
	}
	oneLineError(t, stderr, "is not a directory on host b: the directory must exist on every host of the job")
}

// wordcountHosts starts host processes names, each in a working
// directory of its own holding a copy of input as in/ and an empty out/,
// with env[i] added to the environment of the i-th (if any), and returns
// them with those directories.
func wordcountHosts(t *testing.T, cluster, input string, env [][]string, names ...string) ([]*hostProc, []string) {
	t.Helper()
	return wordcountHostsArgs(t, cluster, input, env, nil, names...)
}

// wordcountHostsArgs is wordcountHosts with more arguments to each host.
func wordcountHostsArgs(t *testing.T, cluster, input string, env [][]string, args []string, names ...string) ([]*hostProc, []string) {
	t.Helper()
	if _, stderr, code := lh(t, "cluster", "init", cluster, "--hosts", strings.Join(names, " ")); code != 0 {
		t.Fatal(stderr)
	}
	var hs []*hostProc
	var cwds []string
	for i, n := range names {
		var e []string
		if i < len(env) {
			e = env[i]
		}
		cwd := filepath.Join(t.TempDir(), n)
		copyTree(t, input, filepath.Join(cwd, "in"))
		if err := os.MkdirAll(filepath.Join(cwd, "out"), 0o755); err != nil {
			t.Fatal(err)
		}
		cwds = append(cwds, cwd)
		hs = append(hs, startHostProcIn(t, cwd, cluster, e, args, n, filepath.Join(t.TempDir(), n+"-data")))
	}
	return hs, cwds
}

// The files a rank wrote move with it: samples/wordcount, checkpointed,
// loses host c (its --data and its out/ wiped) and its ranks restart on
// another host, which makes their files from their checkpoints' replicas.
// The output and the result files of the hosts left together are byte
// for byte those of `run -n 6`. Rank 0 is held at its end (-hold) until
// the last recovery is done, so that the job cannot end before a kill on
// any machine. The cases:
//
//   - two-deaths: over four hosts, c dies after the second committed
//     epoch; d restarts c's rank, and copies its earlier checkpoints to
//     a before it says a checkpoint of the rank is durable; once an
//     epoch is committed since, d dies the same way, and a makes the
//     files of d's ranks and of c's again;
//   - abandoned-round: c's checkpoint writes fail (a failpoint hit by
//     every checkpoint of a rank, running or ended) once the second
//     epoch is committed, until the coordinator abandons a round;
//     c dies after a later epoch is committed, whose checkpoints of c's
//     ranks carry the file changes of the round abandoned (its
//     checkpoints were dropped);
//   - kill-in-write: c dies in the middle of a checkpoint's write (its
//     commit held by a failpoint, hit by every checkpoint of a rank,
//     once the second epoch is committed);
//   - replica-host-died-faults: over four hosts, c dies, then b, whose
//     replica host c was: d, its replica host since, restarts b's ranks
//     from the chains b copied to it; with the job links losing,
//     duplicating and reordering frames.
func TestMultiHostDirsRecovery(t *testing.T) {
	t.Parallel()
	wasm := guest(t, "samples/wordcount")
	gen := t.TempDir()
	jobRun(t, "1", wasm, "--dir", gen+":/data", "-gen", "96", "-words", "20000")
	input := filepath.Join(gen, "in")
	wantOut := t.TempDir()
	open, _ := holdJob(t)
	args := []string{"-in", "/in", "-out", "/out", "-hold", "/hold/end"}
	want, stderr, code := lh(t, append([]string{"run", "-n", "6", "--dir", input + ":/in:ro", "--dir", wantOut + ":/out",
		"--dir", open + ":/hold:ro", wasm, "--"}, args...)...)
	if code != 0 {
		t.Fatalf("run -n 6: exit %d\n%s%s", code, want, stderr)
	}
	faults := []string{"LIBRAHOST_FAULTS=drop=0.2,dup=0.1,reorder=0.1"}
	for _, tc := range []struct {
		name  string
		hosts []string
		env   []string // every host's
		cFail string   // c's failpoint, "name=action" of a gate file
		kills []int    // the hosts killed, in order (c first)
		place []string // the ranks' hosts after each death
	}{
		{"two-deaths", []string{"a", "b", "c", "d"}, nil, "", []int{2, 3}, []string{"a b d d a b", "a b a a a b"}},
		{"abandoned-round", []string{"a", "b", "c"}, nil, "commit:chunks=error", []int{2}, []string{"a b a a b a"}},
		{"kill-in-write", []string{"a", "b", "c"}, nil, "commit:chunks=wait", []int{2}, []string{"a b a a b a"}},
		{"replica-host-died-faults", []string{"a", "b", "c", "d"}, faults, "", []int{2, 1}, []string{"a b d d a b", "a d d d a d"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, release := holdJob(t)
			cluster := filepath.Join(t.TempDir(), "cluster")
			env := make([][]string, len(tc.hosts))
			for i := range env {
				env[i] = tc.env
			}
			gate := filepath.Join(t.TempDir(), "gate")
			if tc.cFail != "" {
				env[2] = append(slices.Clone(tc.env), "LIBRAHOST_FAILPOINTS="+tc.cFail+"("+gate+")")
			}
			if strings.HasSuffix(tc.cFail, "=wait") { // c's writes go on while the gate exists
				if err := os.WriteFile(gate, nil, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			hs, cwds := wordcountHosts(t, cluster, input, env, tc.hosts...)
			sub := submitBg(t, append([]string{"--cluster", cluster, "--hosts", hostList(hs), "-n", "6", "--failure-timeout", lossTimeout,
				"--checkpoint-every", "100ms", "--dir", "in:/in:ro", "--dir", "out:/out", "--dir", release.dir + ":/hold:ro",
				wasm, "--"}, args...)...)
			w := watchLosses(t, hs[0], sub)
			t.Cleanup(func() { logsIfFailed(t, sub, hs...) })
			kill := func(i int) { // its out directory goes with the machine
				w.kill(t, hs[i])
				if err := os.RemoveAll(cwds[i]); err != nil {
					t.Fatal(err)
				}
			}
			waitHostLog(t, hs[2], regexp.MustCompile(`epoch 2 committed`), w.done)
			switch {
			case strings.HasSuffix(tc.cFail, "=error"):
				// c's writes fail until a round is abandoned; c dies once
				// a later one is committed.
				if err := os.WriteFile(gate, nil, 0o644); err != nil {
					t.Fatal(err)
				}
				waitHostLog(t, hs[0], regexp.MustCompile(`checkpoint \d+ abandoned`), w.done)
				if err := os.Remove(gate); err != nil {
					t.Fatal(err)
				}
				waitHostLog(t, hs[0], regexp.MustCompile(`(?s)checkpoint \d+ abandoned.*epoch \d+ committed`), w.done)
			case strings.HasSuffix(tc.cFail, "=wait"):
				if err := os.Remove(gate); err != nil {
					t.Fatal(err)
				}
				waitHostLog(t, hs[2], regexp.MustCompile(`(?s)epoch 2 committed.*failpoint commit:chunks: waiting`), w.done)
			}
			for i, h := range tc.kills {
				if i > 0 {
					// An epoch is committed since the recovery before:
					// the hosts reported it done only once they had
					// copied the chains of their ranks to their replica
					// hosts new since.
					waitHostLog(t, hs[0], regexp.MustCompile(fmt.Sprintf(`(?s)recovered incarnation %d in \d+ ms.*epoch \d+ committed`, i)), w.done)
				}
				kill(h)
			}
			waitHostLog(t, hs[0], regexp.MustCompile(fmt.Sprintf(`recovered incarnation %d in`, len(tc.kills))), w.done)
			release.open(t)
			<-sub.done
			if sub.err != nil {
				t.Fatalf("submit: %v\n%s", sub.err, sub.errb.Bytes())
			}
			compareOutput(t, sub.out.Bytes(), []byte(want))
			var outs []string
			for i, d := range cwds {
				if !slices.Contains(tc.kills, i) {
					outs = append(outs, filepath.Join(d, "out"))
				}
			}
			sameFiles(t, wantOut, outs...)
			ended := make(chan struct{})
			close(ended)
			for i, p := range tc.place {
				waitHostLog(t, hs[0], regexp.MustCompile(fmt.Sprintf(`incarnation %d: ranks on \[%s\]`, i+1, p)), ended)
			}
		})
	}
}

var commitLines = regexp.MustCompile(`(?m)^.*(epoch \d+ committed|from trigger to commit)\n`)

// logsIfFailed logs, if t failed, what the submitter and the hosts other
// than the first (whose log a failed wait shows) said.
func logsIfFailed(t *testing.T, sub *bgSubmit, hs ...*hostProc) {
	if !t.Failed() {
		return
	}
	select {
	case <-sub.done:
		t.Logf("submit said:\n%s", sub.errb.Bytes())
	default:
	}
	for _, h := range hs[1:] {
		b, _ := os.ReadFile(h.stderr.Name())
		t.Logf("host %s said (but its commits):\n%s", h.name, commitLines.ReplaceAll(b, nil))
	}
}
