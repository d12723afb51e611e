package tests

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// A job of heat over three host processes loses the host that runs its
// coordinator (a, rank 0's), SIGKILLed with its --data wiped after the
// second committed epoch: the submitter exits with one line saying how to
// go on, and `submit --resume JOB --hosts b,c` finishes the job from the
// newest epoch b and c hold whole (b holds a's ranks 0 and 3 as replicas),
// its coordinator on b. What the first submitter printed and what the
// resume prints make the failure-free `run -n 6`'s output byte for byte:
// the resume prints each rank's output from where the first submitter
// stopped (the hosts left kept it). Refused in one line before: a host
// that keeps nothing of the job (d, in the cluster but not in the job),
// hosts that do not hold every rank (c alone), and an unknown job. Rank 0
// is held at its end (-hold) until after the kill.
func TestMultiHostCoordinatorResume(t *testing.T) {
	t.Parallel()
	wasm := guest(t, "samples/heat")
	open, release := holdJob(t)
	args := []string{"-hold", "/hold/end", "-steps", "400", "-every", "20"}
	want := jobRun(t, "6", wasm, append([]string{"--dir", open + ":/hold:ro"}, args...)...)
	cluster, hs := startCluster(t, "a", "b", "c", "d")
	sub := submitBg(t, append([]string{"--cluster", cluster, "--hosts", hostList(hs[:3]), "-n", "6",
		"--checkpoint-every", "100ms", "--failure-timeout", failTimeout, "--dir", release.dir + ":/hold:ro", wasm, "--"}, args...)...)
	id := loseCoordinator(t, cluster, hs[:3], sub)
	left := hs[1].addr + "," + hs[2].addr

	for _, tc := range []struct{ hosts, job, want string }{
		{hs[1].addr + "," + hs[3].addr, id, "host d keeps nothing of job " + id},
		{hs[2].addr, id, "rank 0's checkpoint of epoch "},
		{left, "0123456789abcdef", "no job 0123456789abcdef on the hosts given"},
	} {
		out, stderr, code := lh(t, "submit", "--resume", tc.job, "--cluster", cluster, "--hosts", tc.hosts)
		if code != 1 || out != "" {
			t.Fatalf("submit --resume %s --hosts %s: exit %d, stdout %q", tc.job, tc.hosts, code, out)
		}
		oneLineError(t, stderr, tc.want)
	}

	release.open(t)
	out, stderr, code := lh(t, "submit", "--resume", id, "--cluster", cluster, "--hosts", left)
	if code != 0 {
		t.Fatalf("submit --resume: exit %d\n%s", code, stderr)
	}
	compareOutput(t, append(sub.out.Bytes(), out...), want)
	m := regexp.MustCompile(`job ` + id + ` resumes from epoch (\d+) on b,c\n`).FindStringSubmatch(stderr)
	if m == nil {
		t.Fatalf("submit --resume said:\n%s", stderr)
	}
	if e, _ := strconv.Atoi(m[1]); e < 2 {
		t.Fatalf("resumed from epoch %d, want 2 or later", e)
	}
	// b runs the coordinator now, and a's ranks 0 and 3 from its
	// replicas; the job goes on checkpointing.
	ended := make(chan struct{})
	close(ended)
	waitHostLog(t, hs[1], regexp.MustCompile(`job `+id+`: incarnation 1: ranks on \[b b c b b c\]`), ended)
	waitHostLog(t, hs[1], regexp.MustCompile(`(?s)recovered incarnation 1 in \d+ ms.*epoch \d+ committed`), ended)
	if strings.Contains(stderr, "panic") {
		t.Fatal(stderr)
	}
}

// loseCoordinator SIGKILLs hs[0], the coordinator's host of the job sub
// submitted to hs, with its --data wiped once every host committed the
// second epoch, and returns the job's ID once the submitter has exited
// with one line saying how to resume it on the hosts left, which kept
// what it printed.
func loseCoordinator(t *testing.T, cluster string, hs []*hostProc, sub *bgSubmit) string {
	t.Helper()
	for _, h := range hs {
		waitHostLog(t, h, regexp.MustCompile(`epoch 2 committed`), sub.done)
	}
	id := waitHostLog(t, hs[0], regexp.MustCompile(`job ([0-9a-f]+) from`), sub.done)[0][1]
	hs[0].lose(t)
	<-sub.done
	if sub.err == nil {
		t.Fatalf("the coordinator's host lost: submit exited 0\n%s", sub.errb.Bytes())
	}
	oneLineError(t, sub.errb.String(), "`librahost submit --resume "+id+" --cluster "+cluster+" --hosts "+hostList(hs[1:])+"`")
	for _, h := range hs[1:] {
		waitHostLog(t, h, regexp.MustCompile(`job `+id+`: what its submitter printed is kept for a resume`), nil)
	}
	return id
}

// TestMultiHostCoordinatorResume again with the job links losing,
// duplicating and reordering frames: the job's output over the first
// submitter and the resume is the failure-free one.
func TestMultiHostCoordinatorResumeFaults(t *testing.T) {
	t.Parallel()
	wasm := guest(t, "samples/heat")
	open, release := holdJob(t)
	args := []string{"-hold", "/hold/end", "-steps", "60", "-every", "5"}
	want := jobRun(t, "6", wasm, append([]string{"--dir", open + ":/hold:ro"}, args...)...)
	cluster := filepath.Join(t.TempDir(), "cluster")
	if _, stderr, code := lh(t, "cluster", "init", cluster, "--hosts", "a b c"); code != 0 {
		t.Fatal(stderr)
	}
	hs := startHostProcs(t, cluster, []string{"LIBRAHOST_FAULTS=drop=0.2,dup=0.1,reorder=0.1"}, "a", "b", "c")
	sub := submitBg(t, append([]string{"--cluster", cluster, "--hosts", hostList(hs), "-n", "6",
		"--checkpoint-every", "100ms", "--failure-timeout", failTimeout, "--dir", release.dir + ":/hold:ro", wasm, "--"}, args...)...)
	id := loseCoordinator(t, cluster, hs, sub)
	release.open(t)
	out, stderr, code := lh(t, "submit", "--resume", id, "--cluster", cluster, "--hosts", hostList(hs[1:]))
	if code != 0 {
		t.Fatalf("submit --resume: exit %d\n%s", code, stderr)
	}
	compareOutput(t, append(sub.out.Bytes(), out...), want)
}

// A job submitted with --detach survives the loss of its first host,
// which ran both its detached submission and its coordinator (a,
// SIGKILLed with its --data wiped after the second committed epoch): b,
// the next host of the job, takes the submitter's place and resumes the
// job on b and c, as `submit --resume` would, and the job ends. Its
// output, as `logs` gets it from b and c, is the failure-free `run -n
// 6`'s from the resumed epoch's positions on (what rank 0 printed
// before, only a kept).
func TestMultiHostDetachedCoordinatorLost(t *testing.T) {
	t.Parallel()
	wasm := guest(t, "samples/heat")
	open, release := holdJob(t)
	args := []string{"-hold", "/hold/end", "-steps", "400", "-every", "20"}
	want := jobRun(t, "6", wasm, append([]string{"--dir", open + ":/hold:ro"}, args...)...)
	cluster, hs := startCluster(t, "a", "b", "c")
	id := submitDetach(t, cluster, hostList(hs), append([]string{"-n", "6", "--checkpoint-every", "100ms", "--failure-timeout", failTimeout,
		"--dir", release.dir + ":/hold:ro", wasm, "--"}, args...)...)
	for _, h := range hs {
		waitHostLog(t, h, regexp.MustCompile(`job `+id+`: librahost: epoch 2 committed`), nil)
	}
	hs[0].lose(t)
	waitHostLog(t, hs[1], regexp.MustCompile(`job `+id+`: resumed from here \(detached\)`), nil)
	release.open(t)
	out, stderr, code := lh(t, "logs", id, "-f", "--cluster", cluster, "--hosts", hs[1].addr+","+hs[2].addr)
	if code != 0 || out == "" || !bytes.HasSuffix(want, []byte(out)) {
		t.Fatalf("logs -f: exit %d\n%s\nwant a tail of:\n%s", code, stderr, want)
	}
	ended := make(chan struct{})
	close(ended)
	waitHostLog(t, hs[1], regexp.MustCompile(`job `+id+`: incarnation 1: ranks on \[b b c b b c\]`), ended)
	// Its submission here ends once the job has (logs came first).
	waitHostLog(t, hs[1], regexp.MustCompile(`job `+id+` \(detached\): exit 0`), nil)
}

// The files a rank wrote move with it on a resume too: samples/wordcount
// over three hosts loses the coordinator's (a, its --data and its out/
// wiped) once every rank but the held rank 0 has ended and two more
// epochs are committed, and `submit --resume` on b and c restarts a's
// ranks on b, which makes their files from their checkpoints' replicas;
// the ranks that had ended by the epoch are reported ended to the
// resume's submitter (it waited for them for ever). The two submitters' output together, and the
// result files of b and c together, are byte for byte those of `run -n
// 6`.
func TestMultiHostCoordinatorResumeFiles(t *testing.T) {
	t.Parallel()
	wasm := guest(t, "samples/wordcount")
	gen := t.TempDir()
	jobRun(t, "1", wasm, "--dir", gen+":/data", "-gen", "48", "-words", "20000")
	input := filepath.Join(gen, "in")
	wantOut := t.TempDir()
	open, release := holdJob(t)
	args := []string{"-in", "/in", "-out", "/out", "-hold", "/hold/end"}
	want, stderr, code := lh(t, append([]string{"run", "-n", "6", "--dir", input + ":/in:ro", "--dir", wantOut + ":/out",
		"--dir", open + ":/hold:ro", wasm, "--"}, args...)...)
	if code != 0 {
		t.Fatalf("run -n 6: exit %d\n%s%s", code, want, stderr)
	}
	cluster := filepath.Join(t.TempDir(), "cluster")
	hs, cwds := wordcountHosts(t, cluster, input, nil, "a", "b", "c")
	sub := submitBg(t, append([]string{"--cluster", cluster, "--hosts", hostList(hs), "-n", "6", "--checkpoint-every", "100ms", "--failure-timeout", failTimeout,
		"--dir", "in:/in:ro", "--dir", "out:/out", "--dir", release.dir + ":/hold:ro", wasm, "--"}, args...)...)
	// b's and c's ranks end while rank 0 is held (status tells once all
	// of a host's have), and the resume must report them ended. Two
	// epochs committed after hold them so.
	committed := regexp.MustCompile(`epoch \d+ committed`)
	for !exitedRanks(t, cluster, hostList(hs), 1, 2, 4, 5) {
		select {
		case <-sub.done:
			t.Fatalf("submit ended: %v\n%s", sub.err, sub.errb.Bytes())
		case <-time.After(20 * time.Millisecond): // polls status
		}
	}
	for _, h := range hs {
		n := len(waitHostLog(t, h, committed, sub.done))
		waitHostLog(t, h, regexp.MustCompile(fmt.Sprintf(`(?s)(epoch \d+ committed.*){%d}`, n+2)), sub.done)
	}
	id := waitHostLog(t, hs[0], regexp.MustCompile(`job ([0-9a-f]+) from`), sub.done)[0][1]
	hs[0].lose(t)
	if err := os.RemoveAll(cwds[0]); err != nil { // its out directory goes with the machine
		t.Fatal(err)
	}
	<-sub.done
	if sub.err == nil {
		t.Fatalf("the coordinator's host lost: submit exited 0\n%s", sub.errb.Bytes())
	}
	release.open(t)
	out, stderr, code := lh(t, "submit", "--resume", id, "--cluster", cluster, "--hosts", hs[1].addr+","+hs[2].addr)
	if code != 0 {
		t.Fatalf("submit --resume: exit %d\n%s", code, stderr)
	}
	compareOutput(t, append(sub.out.Bytes(), out...), []byte(want))
	sameFiles(t, wantOut, filepath.Join(cwds[1], "out"), filepath.Join(cwds[2], "out"))
	ended := make(chan struct{})
	close(ended)
	waitHostLog(t, hs[1], regexp.MustCompile(`job `+id+`: incarnation 1: ranks on \[b b c b b c\]`), ended)
}

// failTimeout is the coordinator tests' failure timeout: short enough
// that the coordinator's death is found soon, long enough that a loaded
// machine does not take a live host for lost (2 s did).
const failTimeout = "5s"

// exitedRanks reports whether status shows each of ranks exited on some
// host.
func exitedRanks(t *testing.T, cluster, hosts string, ranks ...int) bool {
	t.Helper()
	exited := map[int]bool{}
	for _, r := range statusJSON(t, cluster, hosts) {
		for _, j := range r.Status.Jobs {
			for _, w := range j.Workers {
				exited[w.Rank] = exited[w.Rank] || w.State == "exited"
			}
		}
	}
	for _, r := range ranks {
		if !exited[r] {
			return false
		}
	}
	return true
}
