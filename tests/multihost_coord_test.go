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
	job := newHeldHeat(t, "400", "20")
	cluster, hs := startCluster(t, "a", "b", "c", "d")
	sub := job.submit(t, cluster, hs[:3], "--failure-timeout", failTimeout)
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

	job.release.open(t)
	stderr := resumeOnBC(t, cluster, id, left, sub, job.want)
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
	killCoordinator(t, cluster, id, hs, sub)
	return id
}

// killCoordinator loses hs[0], the coordinator's host of job id, which
// sub submitted (or resumed) on hs, and returns once the submitter has
// exited with one line saying how to resume it on the hosts left, and
// they kept what it printed.
func killCoordinator(t *testing.T, cluster, id string, hs []*hostProc, sub *bgSubmit) {
	t.Helper()
	kept := regexp.MustCompile(`job ` + id + `: what its submitter printed is kept for a resume`)
	before := make([]int, len(hs))
	for i, h := range hs[1:] {
		b, _ := os.ReadFile(h.stderr.Name())
		before[i+1] = len(kept.FindAllIndex(b, -1))
	}
	hs[0].lose(t)
	<-sub.done
	if sub.err == nil {
		t.Fatalf("the coordinator's host lost: submit exited 0\n%s", sub.errb.Bytes())
	}
	// A resume's submitter says where it resumed before.
	last := sub.errb.String()
	if i := strings.LastIndex(strings.TrimSuffix(last, "\n"), "\n"); i >= 0 && strings.HasPrefix(last, "librahost submit: job "+id+" resumes from epoch") {
		last = last[i+1:]
	}
	oneLineError(t, last, "`librahost submit --resume "+id+" --cluster "+cluster+" --hosts "+hostList(hs[1:])+"`")
	for i, h := range hs[1:] {
		waitHostLog(t, h, regexp.MustCompile(fmt.Sprintf(`(?s)(%s.*){%d}`, kept, before[i+1]+1)), nil)
	}
}

// The coordinator's host is lost a second time, after a resume: heat
// over four host processes with one replica of each rank loses a (the
// first coordinator's), `submit --resume` goes on on b, c and d with its
// coordinator on b (which restarts a's ranks from its replicas), and once
// the resumed job has committed two epochs (its replicas made again on
// the hosts left) b is lost the same way, SIGKILLed with its --data
// wiped. `submit --resume` on c and d finishes the job from an epoch of
// the resumed run, c restarting b's ranks, and the three submitters'
// output together is the failure-free `run -n 6`'s byte for byte, also
// with the job links losing, duplicating and reordering frames, and over
// three hosts, resumed on b and c and then on c alone (no host left for
// a replica).
func TestMultiHostCoordinatorResumeTwice(t *testing.T) {
	t.Parallel()
	four := []string{"a", "b", "c", "d"}
	for _, tc := range []struct {
		name         string
		steps, every string
		env          []string // the hosts'
		hosts        []string
		placed       string // the second resume's placement
	}{
		{"heat", "400", "20", nil, four, `\[c c c d c c\]`},
		{"heat-faults", "60", "5", faultsEnv, four, `\[c c c d c c\]`},
		// The first resume's replicas are on the other of its two hosts.
		{"heat-three-hosts", "400", "20", nil, four[:3], `\[c c c c c c\]`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			job := newHeldHeat(t, tc.steps, tc.every)
			cluster, hs := startClusterEnv(t, tc.env, tc.hosts...)
			sub := job.submit(t, cluster, hs, "--replicas", "1", "--failure-timeout", failTimeout)
			id := loseCoordinator(t, cluster, hs, sub)

			resumed := submitBg(t, "--resume", id, "--cluster", cluster, "--hosts", hostList(hs[1:]))
			m := waitHostLog(t, hs[1], regexp.MustCompile(`(?s)recovered incarnation 1 in \d+ ms.*epoch \d+ committed.*epoch (\d+) committed`), resumed.done)
			first, _ := strconv.Atoi(m[0][1])
			for _, h := range hs[2:] {
				waitHostLog(t, h, regexp.MustCompile(fmt.Sprintf(`epoch %d committed`, first)), resumed.done)
			}
			killCoordinator(t, cluster, id, hs[1:], resumed)

			job.release.open(t)
			out, stderr, code := lh(t, "submit", "--resume", id, "--cluster", cluster, "--hosts", hostList(hs[2:]))
			if code != 0 {
				t.Fatalf("submit --resume a second time: exit %d\n%s", code, stderr)
			}
			compareOutput(t, append(append(sub.out.Bytes(), resumed.out.Bytes()...), out...), job.want)
			m = regexp.MustCompile(`job `+id+` resumes from epoch (\d+) on `+strings.Join(tc.hosts[2:], ",")+`\n`).FindAllStringSubmatch(stderr, -1)
			if m == nil {
				t.Fatalf("submit --resume said:\n%s", stderr)
			}
			if e, _ := strconv.Atoi(m[0][1]); e < first {
				t.Fatalf("resumed from epoch %d, want %d or later (committed by the resumed run)", e, first)
			}
			// a's ranks 0 and 4 ran on b, then b's on c (each held the lost
			// host's replicas).
			ended := make(chan struct{})
			close(ended)
			waitHostLog(t, hs[2], regexp.MustCompile(`job `+id+`: incarnation 2: ranks on `+tc.placed), ended)
		})
	}
}

// The coordinator's host dies in the middle of a checkpoint: a, which
// runs the coordinator, is SIGKILLed (its --data wiped) while a
// failpoint holds it in the write of its ranks' checkpoint of a round
// begun after epoch 2 was committed (segment:write), or in the write of
// the round's commit record, after every host said DONE and before any
// was sent COMMIT (commit:job). `submit --resume` on b and c goes on from
// the newest epoch they hold whole, the round a died in dropped, and the
// two submitters' output together is the failure-free `run -n 6`'s.
func TestMultiHostCoordinatorKilledInWrite(t *testing.T) {
	t.Parallel()
	for _, fp := range []string{"segment:write", "commit:job"} {
		t.Run(fp, func(t *testing.T) {
			t.Parallel()
			job := newHeldHeat(t, "400", "20")
			cluster := filepath.Join(t.TempDir(), "cluster")
			if _, stderr, code := lh(t, "cluster", "init", cluster, "--hosts", "a b c"); code != 0 {
				t.Fatal(stderr)
			}
			// a's writes go on while the gate exists.
			gate := filepath.Join(t.TempDir(), "gate")
			if err := os.WriteFile(gate, nil, 0o644); err != nil {
				t.Fatal(err)
			}
			hs := append([]*hostProc{startHostProc(t, cluster, []string{"LIBRAHOST_FAILPOINTS=" + fp + "=wait(" + gate + ")"}, nil, "a", filepath.Join(t.TempDir(), "a"))},
				startHostProcs(t, cluster, nil, "b", "c")...)
			sub := job.submit(t, cluster, hs, "--failure-timeout", failTimeout)
			for _, h := range hs {
				waitHostLog(t, h, regexp.MustCompile(`epoch 2 committed`), sub.done)
			}
			id := waitHostLog(t, hs[0], regexp.MustCompile(`job ([0-9a-f]+) from`), sub.done)[0][1]
			if err := os.Remove(gate); err != nil {
				t.Fatal(err)
			}
			waitHostLog(t, hs[0], regexp.MustCompile(`(?s)epoch 2 committed.*failpoint `+fp+`: waiting`), sub.done)
			killCoordinator(t, cluster, id, hs, sub)
			job.release.open(t)
			resumeOnBC(t, cluster, id, hostList(hs[1:]), sub, job.want)
		})
	}
}

// TestMultiHostCoordinatorResume again with the job links losing,
// duplicating and reordering frames: the job's output over the first
// submitter and the resume is the failure-free one.
func TestMultiHostCoordinatorResumeFaults(t *testing.T) {
	t.Parallel()
	job := newHeldHeat(t, "60", "5")
	cluster, hs := startClusterEnv(t, faultsEnv, "a", "b", "c")
	sub := job.submit(t, cluster, hs, "--failure-timeout", failTimeout)
	id := loseCoordinator(t, cluster, hs, sub)
	job.release.open(t)
	out, stderr, code := lh(t, "submit", "--resume", id, "--cluster", cluster, "--hosts", hostList(hs[1:]))
	if code != 0 {
		t.Fatalf("submit --resume: exit %d\n%s", code, stderr)
	}
	compareOutput(t, append(sub.out.Bytes(), out...), job.want)
}

// A job submitted with --detach survives the loss of its first host,
// which ran both its detached submission and its coordinator (a,
// SIGKILLed with its --data wiped after the second committed epoch): b,
// the next host of the job, takes the submitter's place and resumes the
// job on b and c, as `submit --resume` would, and the job ends. Its
// output, as `logs` gets it from b and c, is the failure-free `run -n
// 6`'s from the resumed epoch's positions on (what rank 0 printed
// before, only a kept). Also with a failure timeout longer than the 10 s
// after which the hosts find the detached submission's connection dead
// (they cancelled the job then, before its coordinator was found lost;
// at 10 s, whichever came first).
func TestMultiHostDetachedCoordinatorLost(t *testing.T) {
	t.Parallel()
	for _, timeout := range []string{failTimeout, "15s"} {
		t.Run(timeout, func(t *testing.T) {
			t.Parallel()
			job := newHeldHeat(t, "400", "20")
			cluster, hs := startCluster(t, "a", "b", "c")
			id := submitDetach(t, cluster, hostList(hs), job.flags("--failure-timeout", timeout)...)
			for _, h := range hs {
				waitHostLog(t, h, regexp.MustCompile(`job `+id+`: librahost: epoch 2 committed`), nil)
			}
			hs[0].lose(t)
			takenOver(t, hs[1], id)
			takenOverEnds(t, cluster, id, job, hs[1:], `incarnation 1: ranks on \[b b c b b c\]`)
		})
	}
}

// takenOver waits until host h has taken detached job id over, and fails
// the test if h cancels the job or does not take it over.
func takenOver(t *testing.T, h *hostProc, id string) {
	t.Helper()
	re := regexp.MustCompile(`job ` + id + `(: resumed from here \(detached\)| cancelled: [^\n]*| \(detached\): not resumed[^\n]*)`)
	if m := waitHostLog(t, h, re, nil); m[0][1] != ": resumed from here (detached)" {
		t.Fatalf("host %s: job %s%s", h.name, id, m[0][1])
	}
}

// takenOverEnds lets detached job id, which hs[0] took over on hs, end
// (its hold opened), and checks that `logs -f` from hs gives a tail of
// its failure-free output, that hs[0] logged placed (the new
// incarnation's placement), and that its submission there ended well.
func takenOverEnds(t *testing.T, cluster, id string, job *heldHeat, hs []*hostProc, placed string) {
	t.Helper()
	job.release.open(t)
	out, stderr, code := lh(t, "logs", id, "-f", "--cluster", cluster, "--hosts", hostList(hs))
	if code != 0 || out == "" || !bytes.HasSuffix(job.want, []byte(out)) {
		t.Fatalf("logs -f: exit %d\n%s\nwant a tail of:\n%s", code, stderr, job.want)
	}
	ended := make(chan struct{})
	close(ended)
	waitHostLog(t, hs[0], regexp.MustCompile(`job `+id+`: `+placed), ended)
	// Its submission there ends once the job has (logs came first).
	waitHostLog(t, hs[0], regexp.MustCompile(`job `+id+` \(detached\): exit 0`), nil)
}

// A detached job whose host that took it over is lost in turn is taken
// over again: heat over four hosts with one replica of each rank loses
// a (its submission's and coordinator's host), b resumes it on b, c and
// d, and once that run has committed two epochs b is lost the same way:
// c, the next host, resumes it on c and d and the job ends, `logs` from
// c and d giving the tail of the failure-free `run -n 6`'s output.
func TestMultiHostDetachedCoordinatorLostTwice(t *testing.T) {
	t.Parallel()
	job := newHeldHeat(t, "400", "20")
	cluster, hs := startCluster(t, "a", "b", "c", "d")
	id := submitDetach(t, cluster, hostList(hs), job.flags("--replicas", "1", "--failure-timeout", failTimeout)...)
	for _, h := range hs {
		waitHostLog(t, h, regexp.MustCompile(`job `+id+`: librahost: epoch 2 committed`), nil)
	}
	hs[0].lose(t)
	takenOver(t, hs[1], id)
	m := waitHostLog(t, hs[1], regexp.MustCompile(`(?s)job `+id+`: librahost: recovered incarnation 1 in \d+ ms.*epoch \d+ committed.*job `+id+`: librahost: epoch (\d+) committed`), nil)
	for _, h := range hs[2:] {
		waitHostLog(t, h, regexp.MustCompile(`job `+id+`: librahost: epoch `+m[0][1]+` committed`), nil)
	}
	hs[1].lose(t)
	takenOver(t, hs[2], id)
	takenOverEnds(t, cluster, id, job, hs[2:], `incarnation 2: ranks on \[c c c d c c\]`)
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
	job := newHeldWordcount(t)
	cluster := filepath.Join(t.TempDir(), "cluster")
	hs, cwds := wordcountHosts(t, cluster, job.input, nil, "a", "b", "c")
	sub := job.submit(t, cluster, hs, "--failure-timeout", failTimeout)
	// b's and c's ranks end while rank 0 is held, and the resume must
	// report them ended.
	waitRanksEnded(t, cluster, hs, sub, 1, 2, 4, 5)
	id := waitHostLog(t, hs[0], regexp.MustCompile(`job ([0-9a-f]+) from`), sub.done)[0][1]
	hs[0].lose(t)
	if err := os.RemoveAll(cwds[0]); err != nil { // its out directory goes with the machine
		t.Fatal(err)
	}
	<-sub.done
	if sub.err == nil {
		t.Fatalf("the coordinator's host lost: submit exited 0\n%s", sub.errb.Bytes())
	}
	job.release.open(t)
	out, stderr, code := lh(t, "submit", "--resume", id, "--cluster", cluster, "--hosts", hs[1].addr+","+hs[2].addr)
	if code != 0 {
		t.Fatalf("submit --resume: exit %d\n%s", code, stderr)
	}
	compareOutput(t, append(sub.out.Bytes(), out...), job.want)
	sameFiles(t, job.wantOut, filepath.Join(cwds[1], "out"), filepath.Join(cwds[2], "out"))
	ended := make(chan struct{})
	close(ended)
	waitHostLog(t, hs[1], regexp.MustCompile(`job `+id+`: incarnation 1: ranks on \[b b c b b c\]`), ended)
}

// The files move with the ranks over two resumes too: wordcount over
// four hosts loses a (its --data and out/ wiped) once the ranks of b, c
// and d have ended and two more epochs are committed, `submit
// --resume` on b, c and d restarts a's ranks on b from their replicas,
// and once that run has committed two epochs b is lost the same way:
// `submit --resume` on c and d restarts b's ranks, a's among them, on c,
// which makes their files from the chains b copied to it. The three
// submitters' output together, and the result files of c and d
// together, are byte for byte those of `run -n 6`.
func TestMultiHostCoordinatorResumeFilesTwice(t *testing.T) {
	t.Parallel()
	job := newHeldWordcount(t)
	cluster := filepath.Join(t.TempDir(), "cluster")
	hs, cwds := wordcountHosts(t, cluster, job.input, nil, "a", "b", "c", "d")
	sub := job.submit(t, cluster, hs, "--replicas", "1", "--failure-timeout", failTimeout)
	waitRanksEnded(t, cluster, hs, sub, 1, 2, 3, 5)
	id := waitHostLog(t, hs[0], regexp.MustCompile(`job ([0-9a-f]+) from`), sub.done)[0][1]
	loseWith := func(i int) {
		if err := os.RemoveAll(cwds[i]); err != nil { // its out directory goes with the machine
			t.Fatal(err)
		}
	}
	killCoordinator(t, cluster, id, hs, sub)
	loseWith(0)

	resumed := submitBg(t, "--resume", id, "--cluster", cluster, "--hosts", hostList(hs[1:]))
	m := waitHostLog(t, hs[1], regexp.MustCompile(`(?s)recovered incarnation 1 in \d+ ms.*epoch \d+ committed.*epoch (\d+) committed`), resumed.done)
	for _, h := range hs[2:] {
		waitHostLog(t, h, regexp.MustCompile(`epoch `+m[0][1]+` committed`), resumed.done)
	}
	killCoordinator(t, cluster, id, hs[1:], resumed)
	loseWith(1)

	job.release.open(t)
	out, stderr, code := lh(t, "submit", "--resume", id, "--cluster", cluster, "--hosts", hostList(hs[2:]))
	if code != 0 {
		t.Fatalf("submit --resume a second time: exit %d\n%s", code, stderr)
	}
	compareOutput(t, append(append(sub.out.Bytes(), resumed.out.Bytes()...), out...), job.want)
	sameFiles(t, job.wantOut, filepath.Join(cwds[2], "out"), filepath.Join(cwds[3], "out"))
	ended := make(chan struct{})
	close(ended)
	waitHostLog(t, hs[2], regexp.MustCompile(`job `+id+`: incarnation 2: ranks on \[c c c d c c\]`), ended)
}

// failTimeout is the coordinator tests' failure timeout, lossTimeout:
// a loaded machine running tests in parallel does not take a live host
// for lost (2 s did, and 5 s could).
const failTimeout = lossTimeout

// faultsEnv makes the job links of a host lose, duplicate and reorder
// frames.
var faultsEnv = []string{"LIBRAHOST_FAULTS=drop=0.2,dup=0.1,reorder=0.1"}

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

// resumeOnBC runs `submit --resume` of job id on hosts (b and c) and
// checks that it resumes from epoch 2 or later and that the first
// submitter's output and its own are want; it returns its stderr.
func resumeOnBC(t *testing.T, cluster, id, hosts string, sub *bgSubmit, want []byte) string {
	t.Helper()
	out, stderr, code := lh(t, "submit", "--resume", id, "--cluster", cluster, "--hosts", hosts)
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
	return stderr
}
