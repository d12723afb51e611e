package tests

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// A rank of a heat job over three host processes moves between hosts
// three times while the job runs (a → b → c → a), then host c is
// drained (its ranks move to a and b, and it takes no new ranks or jobs
// until undrained, then rank 1 moves there); the
// job prints byte for byte what the failure-free `run -n 6` prints,
// also with the job links dropping and reordering frames. Rank 0 is held
// at its end (-hold) until the moves are done, so the job cannot end
// first on any machine.
func TestMigrate(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		args []string
		env  []string // the hosts'
	}{
		{"heat", []string{"-steps", "400", "-every", "20"}, nil},
		{"heat-faults", []string{"-steps", "60", "-every", "5"}, []string{"LIBRAHOST_FAULTS=drop=0.1,reorder=0.1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			wasm := guest(t, "samples/heat")
			open, release := holdJob(t)
			args := append([]string{"-hold", "/hold/end"}, tc.args...)
			want := jobRun(t, "6", wasm, append([]string{"--dir", open + ":/hold:ro"}, args...)...)
			cluster := filepath.Join(t.TempDir(), "cluster")
			if _, stderr, code := lh(t, "cluster", "init", cluster, "--hosts", "a b c"); code != 0 {
				t.Fatal(stderr)
			}
			hs := startHostProcs(t, cluster, tc.env, "a", "b", "c")
			logsOnFailure(t, hs)
			hosts := hostList(hs)
			// No host is lost here: a loaded machine may keep one silent
			// for longer than the default 2 s.
			sub := submitBg(t, append([]string{"--cluster", cluster, "--hosts", hosts, "-n", "6", "--failure-timeout", "15s",
				"--checkpoint-every", "100ms", "--replicas", "1", "--dir", release.dir + ":/hold:ro", wasm, "--"}, args...)...)
			waitHostLog(t, hs[0], regexp.MustCompile(`epoch 1 committed`), sub.done)
			id := waitHostLog(t, hs[0], regexp.MustCompile(`job ([0-9a-f]+) from`), sub.done)[0][1]
			summary := regexp.MustCompile(`^rank 0 of job ` + id + ` moved to [abc]: downtime \S+, total \S+, \d+ pre-copy rounds, sent \S+ \S+ of the guest's \S+ \S+\n$`)
			for _, to := range []string{"b", "c", "a"} {
				out, stderr, code := lh(t, "migrate", "--job", id, "--rank", "0", "--to", to, "--cluster", cluster, "--hosts", hosts)
				if code != 0 || !summary.MatchString(out) {
					t.Fatalf("migrate rank 0 to %s: exit %d: %q\n%s", to, code, out, stderr)
				}
				t.Log(strings.TrimSpace(out))
			}
			out, stderr, code := lh(t, "drain", "c", "--cluster", cluster, "--hosts", hosts)
			if code != 0 || !strings.Contains(out, "job "+id+": every rank left c\n") {
				t.Fatalf("drain c: exit %d: %q\n%s", code, out, stderr)
			}
			// c takes no ranks while drained, nor new jobs.
			_, stderr, code = lh(t, "migrate", "--job", id, "--rank", "1", "--to", "c", "--cluster", cluster, "--hosts", hosts)
			if code != 1 || !strings.Contains(stderr, "c is draining") || strings.Count(stderr, "\n") != 1 {
				t.Fatalf("migrate to a drained host: exit %d: %q", code, stderr)
			}
			_, stderr, code = lh(t, "submit", "--cluster", cluster, "--hosts", hs[2].addr, wasm, "--", "-steps", "1")
			if code != 1 || !strings.Contains(stderr, "host c is drained: it takes no new jobs until `librahost undrain c`") {
				t.Fatalf("submit to a drained host: exit %d: %q", code, stderr)
			}
			// Undrained, it takes them again.
			out, stderr, code = lh(t, "undrain", "c", "--cluster", cluster, "--hosts", hosts)
			if code != 0 || !strings.Contains(out, "job "+id+": c takes its ranks again\n") {
				t.Fatalf("undrain c: exit %d: %q\n%s", code, out, stderr)
			}
			out, stderr, code = lh(t, "migrate", "--job", id, "--rank", "1", "--to", "c", "--cluster", cluster, "--hosts", hosts)
			if code != 0 || !strings.HasPrefix(out, "rank 1 of job "+id+" moved to c: ") {
				t.Fatalf("migrate to an undrained host: exit %d: %q\n%s", code, out, stderr)
			}
			release.open(t)
			<-sub.done
			if sub.err != nil {
				t.Fatalf("submit: %v\n%s", sub.err, sub.errb.Bytes())
			}
			compareOutput(t, sub.out.Bytes(), want)
			ended := make(chan struct{})
			close(ended)
			// Rank 0 ran on each target; c's ranks 2 and 5 left it.
			for _, h := range hs {
				waitHostLog(t, h, regexp.MustCompile(`rank 0 runs here: \S+ after it stopped at its source`), ended)
			}
			waitHostLog(t, hs[0], regexp.MustCompile(`(?s)host h2 drains.*rank 2 moved to h[01].*rank 5 moved to h[01].*host h2 drained`), ended)
		})
	}
}

// A migration whose target dies in the middle of the copy (host b is
// SIGKILLed while it holds the rank's state unread, a failpoint keeping
// it there) leaves the rank at its source: the command says why in one
// line, the job recovers from b's loss as usual and prints what the
// failure-free run prints.
func TestMigrateTargetKilled(t *testing.T) {
	t.Parallel()
	wasm := guest(t, "samples/heat")
	open, release := holdJob(t)
	args := []string{"-hold", "/hold/end", "-steps", "400", "-every", "20"}
	want := jobRun(t, "6", wasm, append([]string{"--dir", open + ":/hold:ro"}, args...)...)
	cluster := filepath.Join(t.TempDir(), "cluster")
	if _, stderr, code := lh(t, "cluster", "init", cluster, "--hosts", "a b c"); code != 0 {
		t.Fatal(stderr)
	}
	hs := append(startHostProcs(t, cluster, nil, "a"),
		startHostProc(t, cluster, []string{"LIBRAHOST_FAILPOINTS=migrate:receive=wait(" + filepath.Join(t.TempDir(), "never") + ")"}, nil, "b", filepath.Join(t.TempDir(), "b")),
		startHostProc(t, cluster, nil, nil, "c", filepath.Join(t.TempDir(), "c")))
	logsOnFailure(t, hs)
	hosts := hostList(hs)
	sub := submitBg(t, append([]string{"--cluster", cluster, "--hosts", hosts, "-n", "6", "--failure-timeout", lossTimeout,
		"--checkpoint-every", "100ms", "--replicas", "1", "--dir", release.dir + ":/hold:ro", wasm, "--"}, args...)...)
	waitHostLog(t, hs[0], regexp.MustCompile(`epoch 1 committed`), sub.done)
	id := waitHostLog(t, hs[0], regexp.MustCompile(`job ([0-9a-f]+) from`), sub.done)[0][1]
	type result struct {
		out, stderr string
		code        int
	}
	mig := make(chan result, 1)
	go func() {
		out, stderr, code := lh(t, "migrate", "--job", id, "--rank", "0", "--to", "b", "--cluster", cluster, "--hosts", hosts)
		mig <- result{out, stderr, code}
	}()
	waitHostLog(t, hs[1], regexp.MustCompile(`failpoint migrate:receive: waiting`), sub.done)
	hs[1].lose(t)
	r := <-mig
	if r.code != 1 || strings.Count(r.stderr, "\n") != 1 || !regexp.MustCompile(`^librahost migrate: .*rank 0`).MatchString(r.stderr) {
		t.Fatalf("migrate to a host killed mid-copy: exit %d: %q %q", r.code, r.out, r.stderr)
	}
	t.Log(strings.TrimSpace(r.stderr))
	release.open(t)
	<-sub.done
	if sub.err != nil {
		t.Fatalf("submit: %v\n%s", sub.err, sub.errb.Bytes())
	}
	compareOutput(t, sub.out.Bytes(), want)
	// Rank 0 never ran anywhere but on a.
	for _, h := range hs {
		b, _ := os.ReadFile(h.stderr.Name())
		if regexp.MustCompile(`rank 0 runs here`).Match(b) {
			t.Fatalf("host %s ran rank 0:\n%s", h.name, b)
		}
	}
}

// waitHostLogOr waits until host h's log matches re and returns the
// matches, or nil once done is closed and it still does not.
func waitHostLogOr(h *hostProc, re *regexp.Regexp, done <-chan struct{}) [][]string {
	for {
		b, _ := os.ReadFile(h.stderr.Name())
		if m := re.FindAllStringSubmatch(string(b), -1); m != nil {
			return m
		}
		select {
		case <-done:
			b, _ = os.ReadFile(h.stderr.Name())
			return re.FindAllStringSubmatch(string(b), -1)
		case <-time.After(10 * time.Millisecond): // polls the log file
		}
	}
}

// waitFile waits until a file exists at path; it fails the test if done
// is closed first.
func waitFile(t *testing.T, path string, done <-chan struct{}) {
	t.Helper()
	for {
		if _, err := os.Stat(path); err == nil {
			return
		}
		select {
		case <-done:
			t.Fatalf("%s was never written", path)
		case <-time.After(10 * time.Millisecond): // polls the directory
		}
	}
}

// logsOnFailure prints the hosts' logs if the test fails.
func logsOnFailure(t *testing.T, hs []*hostProc) {
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		for _, h := range hs {
			b, _ := os.ReadFile(h.stderr.Name())
			t.Logf("host %s's log:\n%s", h.name, b)
		}
	})
}

// A target whose read-only input differs from the source's (checked by
// hash) refuses the rank in one line and the rank goes on at its source
// (the target is told that the move is off); a move to a host with the
// same input then succeeds, and the output is
// the failure-free run's. Each host resolves the mount `in` in a working
// directory of its own, the same at submit time; c's copy changes after.
func TestMigrateRefused(t *testing.T) {
	t.Parallel()
	wasm := guest(t, "samples/heat")
	open, release := holdJob(t)
	args := []string{"-hold", "/hold/end", "-steps", "400", "-every", "20"}
	want := jobRun(t, "6", wasm, append([]string{"--dir", open + ":/hold:ro"}, args...)...)
	cluster := filepath.Join(t.TempDir(), "cluster")
	if _, stderr, code := lh(t, "cluster", "init", cluster, "--hosts", "a b c"); code != 0 {
		t.Fatal(stderr)
	}
	var hs []*hostProc
	var dirs []string
	for _, n := range []string{"a", "b", "c"} {
		dir := t.TempDir()
		if err := os.Mkdir(filepath.Join(dir, "in"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "in", "data"), []byte("same\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		dirs = append(dirs, dir)
		hs = append(hs, startHostProcIn(t, dir, cluster, nil, nil, n, filepath.Join(dir, "data")))
	}
	logsOnFailure(t, hs)
	hosts := hostList(hs)
	sub := submitBg(t, append([]string{"--cluster", cluster, "--hosts", hosts, "-n", "6", "--failure-timeout", "15s", "--checkpoint-every", "100ms",
		"--replicas", "1", "--dir", "in:/in:ro", "--dir", release.dir + ":/hold:ro", wasm, "--"}, args...)...)
	waitHostLog(t, hs[0], regexp.MustCompile(`epoch 1 committed`), sub.done)
	id := waitHostLog(t, hs[0], regexp.MustCompile(`job ([0-9a-f]+) from`), sub.done)[0][1]
	if err := os.WriteFile(filepath.Join(dirs[2], "in", "data"), []byte("other\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, stderr, code := lh(t, "migrate", "--job", id, "--rank", "0", "--to", "c", "--cluster", cluster, "--hosts", hosts)
	if code != 1 || strings.Count(stderr, "\n") != 1 ||
		!strings.Contains(stderr, "c refused rank 0: its input /in differs from a's (hash): rank 0 goes on at a") {
		t.Fatalf("migrate to a host whose input differs: exit %d: %q", code, stderr)
	}
	// The target is told that the move is off, and drops what came of it.
	waitHostLog(t, hs[2], regexp.MustCompile(`the move of rank 0 here from a is off: what came of it is dropped`), sub.done)
	out, stderr, code := lh(t, "migrate", "--job", id, "--rank", "0", "--to", "b", "--cluster", cluster, "--hosts", hosts)
	if code != 0 || !strings.HasPrefix(out, "rank 0 of job "+id+" moved to b: ") {
		t.Fatalf("migrate to b: exit %d: %q\n%s", code, out, stderr)
	}
	release.open(t)
	<-sub.done
	if sub.err != nil {
		t.Fatalf("submit: %v\n%s", sub.err, sub.errb.Bytes())
	}
	compareOutput(t, sub.out.Bytes(), want)
}

// A drained host stays drained across its restart on the same --data:
// it refuses a new job in one line until undrained, then takes one.
func TestDrainKeptAcrossRestart(t *testing.T) {
	t.Parallel()
	wasm := guest(t, "tests/testdata/exit3.c")
	cluster, hs := startCluster(t, "a")
	logsOnFailure(t, hs)
	if out, stderr, code := lh(t, "drain", "a", "--cluster", cluster, "--hosts", hs[0].addr); code != 0 {
		t.Fatalf("drain a: exit %d: %q\n%s", code, out, stderr)
	}
	a := restartHostProc(t, cluster, hs[0])
	logsOnFailure(t, []*hostProc{a})
	_, stderr, code := lh(t, "submit", "--cluster", cluster, "--hosts", a.addr, wasm)
	if code != 1 || strings.Count(stderr, "\n") != 1 || !strings.Contains(stderr, "host a is drained: it takes no new jobs until `librahost undrain a`") {
		t.Fatalf("submit to a host drained before its restart: exit %d: %q", code, stderr)
	}
	if out, stderr, code := lh(t, "undrain", "a", "--cluster", cluster, "--hosts", a.addr); code != 0 {
		t.Fatalf("undrain a: exit %d: %q\n%s", code, out, stderr)
	}
	a = restartHostProc(t, cluster, a)
	logsOnFailure(t, []*hostProc{a})
	if _, stderr, code := lh(t, "submit", "--cluster", cluster, "--hosts", a.addr, wasm); code != 3 {
		t.Fatalf("submit to a host undrained before its restart: exit %d, want the guest's 3: %q", code, stderr)
	}
}

// The files a rank writes under a read-write --dir move with it: a job
// whose six ranks each append a line per lap to a file of their own and
// rewrite another (tests/testdata/jobfiles), over three host processes
// each with a directory of its own, moves rank 0 from a to b (a then
// removes the files rank 0 made there), from b to c by stop-and-copy
// (LIBRAHOST_PRECOPY=off on b), and back to a. Rank 0 is held at laps
// between the moves, so that it writes between them, after a checkpoint
// and before the next (there are no periodic checkpoints: one is asked
// for before the first move, and each move begins one). Every rank's
// files on the host it ends on, and the job's output (each rank's files'
// hashes, read by the rank), are byte for byte those of `run -n 6`. The
// stop-and-copy target runs the rank before its memory is read (lazily),
// and has all of it before the rank moves on.
func TestMigrateFiles(t *testing.T) {
	t.Parallel()
	fj := startFilesJob(t, "15s", [][]string{nil, {"LIBRAHOST_PRECOPY=off"}})
	summary := regexp.MustCompile(`^rank 0 of job ` + fj.id + ` moved to [abc]: downtime \S+, total \S+, \d+ pre-copy rounds, sent \S+ \S+ of the guest's \S+ \S+\n$`)
	for k, to := range []string{"b", "c", "a"} {
		out, stderr, code := lh(t, "migrate", "--job", fj.id, "--rank", "0", "--to", to, "--cluster", fj.cluster, "--hosts", fj.hosts)
		if code != 0 || !summary.MatchString(out) || to == "c" && !strings.Contains(out, " 0 pre-copy rounds") {
			t.Fatalf("migrate rank 0 to %s: exit %d: %q\n%s", to, code, out, stderr)
		}
		t.Log(strings.TrimSpace(out))
		// c said how it restored rank 0 before the rank ran there, and
		// the move off it waited for all of its memory.
		if to != "b" {
			want := map[string]string{"c": "rank 0: restore: lazy", "a": "rank 0: memory restored lazily: all"}[to]
			if b, err := os.ReadFile(fj.hs[2].stderr.Name()); err != nil || !strings.Contains(string(b), want) {
				t.Fatalf("after the move to %s, host c has not logged %q (%v):\n%s", to, want, err, b)
			}
		}
		fj.release(t, k+1)
	}
	// a, where it started, returned its directory to how it was before
	// rank 0 ran there once it left, before rank 0 came back.
	ended := make(chan struct{})
	close(ended)
	waitHostLog(t, fj.hs[0], regexp.MustCompile(`(?s)rank 0 left: its files here are as they were before it ran here.*rank 0 runs here`), ended)
	// Rank r ran on host r%3 but rank 0, which came back to a.
	fj.check(t, "a b c a b c")
}

// A move of a rank with files whose target dies while it holds the
// rank's last state unread (by stop-and-copy from a: its only copy; a
// failpoint keeps b there) leaves the rank at its source with its files,
// which its journal there still rolls back: the job recovers from b's
// loss (b's ranks' files are made on the hosts they restart on) and its
// output and files are those of `run -n 6`.
func TestMigrateFilesTargetKilled(t *testing.T) {
	t.Parallel()
	fj := startFilesJob(t, lossTimeout, [][]string{{"LIBRAHOST_PRECOPY=off"},
		{"LIBRAHOST_FAILPOINTS=migrate:receive=wait(" + filepath.Join(t.TempDir(), "never") + ")"}})
	fj.release(t, 1)
	mig, migDone := make(chan string, 1), make(chan struct{})
	go func() {
		defer close(migDone)
		_, stderr, code := lh(t, "migrate", "--job", fj.id, "--rank", "0", "--to", "b", "--cluster", fj.cluster, "--hosts", fj.hosts)
		mig <- fmt.Sprintf("exit %d: %s", code, stderr)
	}()
	if m := waitHostLogOr(fj.hs[1], regexp.MustCompile(`failpoint migrate:receive: waiting`), migDone); m == nil {
		t.Fatalf("migrate ended before b took rank 0's state: %s", <-mig)
	}
	fj.hs[1].lose(t)
	if err := os.RemoveAll(fj.cwds[1]); err != nil { // its directory goes with the machine
		t.Fatal(err)
	}
	if r := <-mig; !regexp.MustCompile(`^exit 1: librahost migrate: .*rank 0[^\n]*\n$`).MatchString(r) {
		t.Fatalf("migrate to a host killed mid-copy: %q", r)
	}
	place := waitHostLog(t, fj.hs[0], regexp.MustCompile(`incarnation 1: ranks on \[([a-c ]+)\]`), fj.sub.done)[0][1]
	if !strings.HasPrefix(place, "a ") {
		t.Fatalf("rank 0 runs on %s after the recovery, want a", place)
	}
	fj.check(t, place)
}

// filesJob is a jobfiles job over three host processes a, b and c, each
// with a directory of its own, with what `run -n 6` made.
type filesJob struct {
	cluster, hosts, id string
	hs                 []*hostProc
	cwds               []string
	sub                *bgSubmit
	held               string // the holds' directory
	want, wantFiles    string
}

// startFilesJob runs the job without a move, then over host processes
// (env[i] added to the i-th's environment), and returns once it has
// taken a checkpoint, with rank 0 held at its first hold.
func startFilesJob(t *testing.T, failureTimeout string, env [][]string) *filesJob {
	t.Helper()
	wasm := guest(t, "tests/testdata/jobfiles")
	open := t.TempDir()
	for k := 1; k <= 3; k++ {
		if err := os.WriteFile(filepath.Join(open, fmt.Sprint(k)), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	args := []string{"-laps", "400", "-hold", "/hold", "-holds", "3"}
	fj := &filesJob{wantFiles: t.TempDir(), held: t.TempDir()}
	want, stderr, code := lh(t, append([]string{"run", "-n", "6", "--dir", fj.wantFiles + ":/data", "--dir", open + ":/hold:ro", wasm, "--"}, args...)...)
	if code != 0 || !strings.Contains(want, "rank5.txt: ") {
		t.Fatalf("run -n 6: exit %d\n%s%s", code, want, stderr)
	}
	fj.want = want
	t.Cleanup(func() { copyTree(t, open, fj.held) }) // a failed test's job ends too
	fj.cluster = filepath.Join(t.TempDir(), "cluster")
	fj.hs, fj.cwds = wordcountHostsArgs(t, fj.cluster, t.TempDir(), env, []string{"-v"}, "a", "b", "c")
	logsOnFailure(t, fj.hs)
	fj.hosts = hostList(fj.hs)
	fj.sub = submitBg(t, append([]string{"--cluster", fj.cluster, "--hosts", fj.hosts, "-n", "6", "--failure-timeout", failureTimeout,
		"--checkpoint-every", "1h", "--replicas", "1", "--dir", "out:/data", "--dir", fj.held + ":/hold:ro", wasm, "--"}, args...)...)
	fj.id = waitHostLog(t, fj.hs[0], regexp.MustCompile(`job ([0-9a-f]+) from`), fj.sub.done)[0][1]
	// Once rank 0 runs (it wrote a file), a checkpoint: the first move
	// takes its chain and what rank 0 wrote since.
	waitFile(t, filepath.Join(fj.cwds[0], "out", "lap0.txt"), fj.sub.done)
	if ck, stderr, code := lh(t, "checkpoint", "--job", fj.id, "--cluster", fj.cluster, "--hosts", fj.hosts); code != 0 {
		t.Fatalf("checkpoint --job: exit %d: %q %q", code, ck, stderr)
	}
	return fj
}

// release lets rank 0 go on from hold k.
func (fj *filesJob) release(t *testing.T, k int) {
	if err := os.WriteFile(filepath.Join(fj.held, fmt.Sprint(k)), nil, 0o644); err != nil {
		t.Fatal(err)
	}
}

// check lets the job end and compares its output, and the files of each
// rank on the host place names for it, with those of `run -n 6`.
func (fj *filesJob) check(t *testing.T, place string) {
	t.Helper()
	for k := 1; k <= 3; k++ {
		fj.release(t, k)
	}
	<-fj.sub.done
	if fj.sub.err != nil {
		t.Fatalf("submit: %v\n%s", fj.sub.err, fj.sub.errb.Bytes())
	}
	compareOutput(t, fj.sub.out.Bytes(), []byte(fj.want))
	hosts := strings.Fields(place)
	for r := range 6 {
		for _, name := range []string{"rank%d.txt", "lap%d.txt"} {
			name = fmt.Sprintf(name, r)
			w, err := os.ReadFile(filepath.Join(fj.wantFiles, name))
			if err != nil {
				t.Fatal(err)
			}
			h := hosts[r][0] - 'a'
			got, err := os.ReadFile(filepath.Join(fj.cwds[h], "out", name))
			if err != nil || !bytes.Equal(got, w) {
				t.Fatalf("%s on host %s: %d bytes (%v), want the %d bytes of `run -n 6`", name, hosts[r], len(got), err, len(w))
			}
		}
	}
}
