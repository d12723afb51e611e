package tests

import (
	"bytes"
	"encoding/binary"
	"os/exec"
	"strconv"
	"strings"
	"testing"

	bolt "go.etcd.io/bbolt"
)

// jobRun runs a job of n workers without checkpoints and returns its stdout.
// Flags for `run` may come before "--" in args.
func jobRun(t *testing.T, n string, wasm string, args ...string) []byte {
	t.Helper()
	var out, errb bytes.Buffer
	var flags []string
	if len(args) > 1 && args[0] == "--dir" {
		flags, args = args[:2], args[2:]
	}
	argv := append(append([]string{"run", "-n", n}, flags...), wasm, "--")
	cmd := exec.Command(librahost, append(argv, args...)...)
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("uninterrupted job: %v\n%s", err, errb.Bytes())
	}
	return out.Bytes()
}

// A job of four workers exchanging halos, SIGKILLed at random moments and
// resumed each time, prints what an uninterrupted run prints: the
// messages in flight and in the inboxes at each cut are delivered once.
func TestKillResumeJobHeat(t *testing.T) {
	t.Parallel()
	wasm := guest(t, "samples/heat")
	// About 5 s uninterrupted on an idle 2-core machine; three kills take
	// at most 3.6 s of it, so the job is still running at each kill.
	args := []string{"-steps", "2000", "-every", "40"}
	want := jobRun(t, "4", wasm, args...)
	got := killResumeFlags(t, []string{"-n", "4"}, wasm, 3, "200ms", args...)
	compareOutput(t, got, want)
}

// The token ring checks every hop: a lost or repeated message fails it.
func TestKillResumeJobRing(t *testing.T) {
	t.Parallel()
	wasm := guest(t, "samples/ring")
	// About 5.5 s uninterrupted on an idle machine; two kills take at most 2.4 s.
	want := jobRun(t, "4", wasm, "-laps", "12000")
	got := killResumeFlags(t, []string{"-n", "4", "--prefix"}, wasm, 2, "150ms", "-laps", "12000")
	compareOutput(t, got, bytes.ReplaceAll(want, []byte("ring"), []byte("[0] ring")))
}

// C workers (asyncify); the ranks other than 0 end early, so most cuts
// hold ended ranks.
func TestKillResumeJobC(t *testing.T) {
	t.Parallel()
	wasm := guest(t, "samples/pi/c/pi.c")
	// About 5 s uninterrupted on an idle machine; two kills take at most 2.4 s.
	want := jobRun(t, "4", wasm, "1500000000")
	got := killResumeFlags(t, []string{"-n", "4"}, wasm, 2, "150ms", "1500000000")
	compareOutput(t, got, want)
}

// A damaged checkpoint of one rank makes the whole job fall back to the
// epoch before; `ckpt ls` lists job epochs; the run record says n, so the
// resume needs no -n; the output is still exactly once.
func TestJobFallsBackPastDamagedRank(t *testing.T) {
	t.Parallel()
	state, outPath, out, want := killedHeatJob(t)
	ls, _, _ := lh(t, "ckpt", "ls", "--state", state)
	lines := strings.Split(strings.TrimSpace(ls), "\n")
	if len(lines) < 3 || !strings.Contains(lines[0], "WORKERS") || !strings.Contains(lines[len(lines)-1], " 3 ") {
		t.Fatalf("ckpt ls:\n%s", ls)
	}
	newest := strings.Fields(lines[len(lines)-1])[0]
	// Flip a byte of rank 1's newest manifest.
	var epoch uint64
	editStore(t, state, func(tx *bolt.Tx, _ string) error {
		b := tx.Bucket([]byte("manifests"))
		prefix := append(binary.BigEndian.AppendUint16(nil, 3), "job"...)
		prefix = binary.BigEndian.AppendUint32(prefix, 1)
		var key, val []byte
		c := b.Cursor()
		for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
			key, val = bytes.Clone(k), bytes.Clone(v)
		}
		epoch = binary.BigEndian.Uint64(key[len(prefix):])
		val[len(val)/2] ^= 0x40
		return b.Put(key, val)
	})
	if newest != strconv.FormatUint(epoch, 10) {
		t.Fatalf("rank 1's newest checkpoint is %d, the newest job epoch %s", epoch, newest)
	}
	var errb bytes.Buffer
	resume := exec.Command(librahost, "run", "--resume", "--state", state, "-v")
	resume.Stdout, resume.Stderr = out, &errb
	if err := resume.Run(); err != nil {
		t.Fatalf("resume: %v\n%s", err, errb.Bytes())
	}
	stderr := errb.String()
	if !strings.Contains(stderr, "falls back") || !strings.Contains(stderr, "rank 1") && !strings.Contains(stderr, "worker 1") {
		t.Fatalf("no fallback reported:\n%s", stderr)
	}
	if wantLine := "from epoch " + strconv.FormatUint(epoch-1, 10); !strings.Contains(stderr, wantLine) {
		t.Fatalf("want the job resumed %s:\n%s", wantLine, stderr)
	}
	compareOutput(t, readAll(t, outPath), want)
}

// Each rank's files are rolled back with it: workers appending to and
// rewriting files in a mounted directory, killed and resumed, leave the
// files an uninterrupted run leaves (rank 0 prints their hashes).
func TestKillResumeJobFiles(t *testing.T) {
	t.Parallel()
	wasm := guest(t, "tests/testdata/jobfiles")
	args := []string{"-laps", "3000"}
	plainDir := t.TempDir()
	want := jobRun(t, "3", wasm, append([]string{"--dir", plainDir + ":/data"}, args...)...)
	if !bytes.Contains(want, []byte("rank2.txt: 58521 bytes")) {
		t.Fatalf("uninterrupted run:\n%s", want)
	}
	dir := t.TempDir()
	got := killResumeFlags(t, []string{"-n", "3", "--dir", dir + ":/data"}, wasm, 2, "200ms", args...)
	compareOutput(t, got, want)
}
