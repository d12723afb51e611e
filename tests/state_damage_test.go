package tests

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// killedRun runs wasm with frequent checkpoints and the given run flags
// and guest args, kills it after its k-th durable checkpoint, and returns
// its state dir and the stdout file it wrote.
func killedRun(t *testing.T, dir, wasm string, k uint64, flags []string, args ...string) (state, outPath string) {
	t.Helper()
	state = filepath.Join(dir, "st")
	outPath = filepath.Join(dir, "out")
	out := appendTo(t, outPath)
	argv := append([]string{"run", "--state", state, "--checkpoint-every", "150ms"}, flags...)
	cmd := exec.Command(librahost, append(append(argv, wasm, "--"), args...)...)
	cmd.Stdout = out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waitEpoch(t, state, k)
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	return state, outPath
}

// resumeOK resumes the run in state with extra arguments, appending to
// outPath, and returns its stderr; the resume must succeed.
func resumeOK(t *testing.T, state, outPath string, extra ...string) string {
	t.Helper()
	var errb bytes.Buffer
	cmd := exec.Command(librahost, append([]string{"run", "--resume", "--state", state}, extra...)...)
	cmd.Stdout, cmd.Stderr = appendTo(t, outPath), &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("resume: %v\n%s", err, errb.Bytes())
	}
	if s := errb.String(); strings.Contains(s, "panic:") || strings.Contains(s, "goroutine ") {
		t.Fatalf("a Go panic reached the user:\n%s", s)
	}
	return errb.String()
}

// resumeSays resumes the run in state like resumeOK, checks that its
// stderr says each of says, and that the output is want.
func resumeSays(t *testing.T, state, outPath string, want []byte, says []string, extra ...string) {
	t.Helper()
	stderr := resumeOK(t, state, outPath, extra...)
	for _, s := range says {
		if !strings.Contains(stderr, s) {
			t.Fatalf("the resume did not say %q:\n%s", s, stderr)
		}
	}
	compareOutput(t, readAll(t, outPath), want)
}

// refused checks that a resume of state is refused with exit 1 and one
// line naming want, changing neither the store nor the run record.
func refused(t *testing.T, state, want string, argv ...string) {
	t.Helper()
	before := storeSum(t, state)
	rec := fileSum(t, filepath.Join(state, "run.json"))
	_, stderr, code := lh(t, argv...)
	if code != 1 {
		t.Fatalf("%v: exit %d\n%s", argv, code, stderr)
	}
	oneLineError(t, stderr, want)
	if storeSum(t, state) != before {
		t.Fatal("a refused resume changed the checkpoint store")
	}
	if fileSum(t, filepath.Join(state, "run.json")) != rec {
		t.Fatal("a refused resume changed the run record")
	}
}

// moveStore moves the checkpoint store of state dir from into to,
// replacing the one there.
func moveStore(t *testing.T, from, to string) {
	t.Helper()
	os.MkdirAll(to, 0o755)
	for _, f := range []string{"ckpt.db", "ckpt.db.seg"} {
		os.RemoveAll(filepath.Join(to, f))
		if err := os.Rename(filepath.Join(from, f), filepath.Join(to, f)); err != nil {
			t.Fatal(err)
		}
	}
}

// A store copied from another run of the same module (other arguments) is
// refused in one line naming what differs; with its own store back, the
// run resumes and its output is exactly once.
func TestStoreOfAnotherRun(t *testing.T) {
	t.Parallel()
	wasm := guest(t, "tests/testdata/timer")
	want := plainRun(t, wasm, "first")
	stateA, outA := killedRun(t, t.TempDir(), wasm, 2, nil, "first")
	stateB, _ := killedRun(t, t.TempDir(), wasm, 2, nil, "second")
	own := filepath.Join(t.TempDir(), "own")
	moveStore(t, stateA, own)
	copyDir(t, stateB, filepath.Join(own, "b"))
	moveStore(t, filepath.Join(own, "b"), stateA)
	refused(t, stateA, `"second"], this run's [`, "run", "--resume", "--state", stateA, wasm)
	refused(t, stateA, "belongs to run", "restore", "--state", stateA)
	if insp, _, _ := lh(t, "ckpt", "inspect", "--state", stateA); !strings.Contains(insp, `"second"]`) {
		t.Fatalf("ckpt inspect does not show the checkpoint's run:\n%s", insp)
	}
	moveStore(t, own, stateA)
	resumeOK(t, stateA, outA)
	compareOutput(t, readAll(t, outA), want)
}

// A lost run record is rebuilt from the checkpoints: a resume continues
// the run (its arguments kept in the checkpoints) and prints each byte
// once; a new run in the same state dir is refused, as for any unfinished
// run, instead of dropping the checkpoints.
func TestLostRunRecord(t *testing.T) {
	t.Parallel()
	wasm := guest(t, "tests/testdata/timer")
	want := plainRun(t, wasm, "x")
	state, outPath := killedRun(t, t.TempDir(), wasm, 2, nil, "x")
	os.Remove(filepath.Join(state, "run.json"))
	before := storeSum(t, state)
	_, stderr, code := lh(t, "run", "--state", state, wasm)
	if code != 1 || !strings.Contains(stderr, "use --resume") || !strings.Contains(stderr, "rebuilt it from checkpoint") {
		t.Fatalf("a new run over a lost record: exit %d\n%s", code, stderr)
	}
	if storeSum(t, state) != before {
		t.Fatal("a refused run changed the checkpoint store")
	}
	os.Remove(filepath.Join(state, "run.json"))
	if ls, stderr, code := lh(t, "ckpt", "ls", "--state", state); code != 0 || strings.Count(ls, "\n") < 3 {
		t.Fatalf("ckpt ls of a state dir that lost its record: exit %d\n%s%s", code, ls, stderr)
	}
	resumeSays(t, state, outPath, want, []string{"lost its run record"}, wasm)
}

// The same for a job: the rebuilt record says how many workers.
func TestLostRunRecordJob(t *testing.T) {
	t.Parallel()
	wasm := guest(t, "samples/heat")
	args := []string{"-steps", "400", "-every", "20"}
	want := jobRun(t, "3", wasm, args...)
	state, outPath := killedRun(t, t.TempDir(), wasm, 2, []string{"-n", "3"}, args...)
	os.Remove(filepath.Join(state, "run.json"))
	resumeSays(t, state, outPath, want, []string{"lost its run record"})
}

// A damaged copy of the module in the state dir is reported as damaged,
// not as another module; given the module again, the resume repairs it.
func TestDamagedModuleCopy(t *testing.T) {
	t.Parallel()
	wasm := guest(t, "tests/testdata/timer")
	want := plainRun(t, wasm)
	state, outPath := killedRun(t, t.TempDir(), wasm, 2, nil)
	copyPath := filepath.Join(state, "module.wasm")
	b := readAll(t, copyPath)
	b[len(b)/2] ^= 0x10
	os.WriteFile(copyPath, b, 0o644)
	refused(t, state, "module.wasm is damaged", "restore", "--state", state)
	refused(t, state, "give the module again", "run", "--resume", "--state", state)
	resumeSays(t, state, outPath, want, []string{"repaired it from"}, wasm)
	if !bytes.Equal(readAll(t, copyPath), readAll(t, wasm)) {
		t.Fatal("the copy of the module was not repaired")
	}
}

// newestEpoch is the newest checkpoint `ckpt ls` lists.
func newestEpoch(t *testing.T, state string) uint64 {
	t.Helper()
	ls, stderr, _ := lh(t, "ckpt", "ls", "--state", state)
	lines := strings.Split(strings.TrimSpace(ls), "\n")
	if len(lines) < 3 {
		t.Fatalf("want at least two checkpoints:\n%s%s", ls, stderr)
	}
	e, err := strconv.ParseUint(strings.Fields(lines[len(lines)-1])[0], 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// damageSeal flips a bit of the epoch number of the seal of epoch in a
// file journal: magic, then frames of length u32 | CRC-32C u32 | payload,
// a seal's payload being type 1 | epoch uvarint | ....
func damageSeal(t *testing.T, path string, epoch uint64) {
	t.Helper()
	b := readAll(t, path)
	at := 8
	found := -1
	for at+8 <= len(b) {
		l := int(binary.LittleEndian.Uint32(b[at:]))
		p := b[at+8 : min(len(b), at+8+l)]
		if len(p) > 1 && p[0] == 1 {
			if e, n := binary.Uvarint(p[1:]); n > 0 && e == epoch {
				found = at + 9
			}
		}
		at += 8 + l
	}
	if found < 0 {
		t.Fatalf("no seal of epoch %d in %s", epoch, path)
	}
	b[found] ^= 0x01
	os.WriteFile(path, b, 0o600)
}

// A damaged seal in the file journal of a guest that changes its files
// makes the resume fall back to the checkpoint before, as a damaged chunk
// does: files and output end up as an uninterrupted run's.
func TestDamagedJournalSeal(t *testing.T) {
	t.Parallel()
	wasm := guest(t, "tests/testdata/files")
	const steps = "120"
	refDir := t.TempDir()
	var want bytes.Buffer
	cmd := exec.Command(librahost, "run", "--dir", refDir+":/data", wasm, "--", "/data", steps)
	cmd.Stdout = &want
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	os.Mkdir(data, 0o755)
	state, outPath := killedRun(t, dir, wasm, 3, []string{"--dir", data + ":/data"}, "/data", steps)
	newest := newestEpoch(t, state)
	damageSeal(t, filepath.Join(state, "files.journal"), newest)
	resumeSays(t, state, outPath, want.Bytes(), []string{"files.journal is damaged at offset", fmt.Sprintf("falling back to checkpoint %d", newest-1)})
	if got, w := tree(t, data), tree(t, refDir); got != w {
		t.Fatalf("files differ from an uninterrupted run's:\n%s\nwant:\n%s", got, w)
	}
}

// A guest without mounted directories has no files to roll back: a file
// journal damaged beyond reading costs nothing but a warning.
func TestDamagedJournalNoFiles(t *testing.T) {
	t.Parallel()
	wasm := guest(t, "tests/testdata/timer")
	want := plainRun(t, wasm)
	state, outPath := killedRun(t, t.TempDir(), wasm, 2, nil)
	os.WriteFile(filepath.Join(state, "files.journal"), bytes.Repeat([]byte{0xa5}, 300), 0o600)
	resumeSays(t, state, outPath, want, []string{"no mounted directories, so a new journal starts"})
}

// An empty or missing checkpoint store is reported as such, not as a file
// journal that lacks epoch 0, and the state dir is left as it was.
func TestEmptyStore(t *testing.T) {
	t.Parallel()
	wasm := guest(t, "tests/testdata/timer")
	state, _ := killedRun(t, t.TempDir(), wasm, 2, nil)
	for _, tc := range []struct {
		name string
		edit func()
	}{
		{"empty", func() { os.WriteFile(filepath.Join(state, "ckpt.db"), nil, 0o600) }},
		{"missing", func() { os.Remove(filepath.Join(state, "ckpt.db")) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			os.RemoveAll(filepath.Join(state, "ckpt.db.seg"))
			tc.edit()
			journal := fileSum(t, filepath.Join(state, "files.journal"))
			rec := fileSum(t, filepath.Join(state, "run.json"))
			_, stderr, code := lh(t, "run", "--resume", "--state", state, wasm)
			if code != 1 {
				t.Fatalf("exit %d\n%s", code, stderr)
			}
			oneLineError(t, stderr, "holds no checkpoint, though its run record names checkpoint")
			if fileSum(t, filepath.Join(state, "files.journal")) != journal || fileSum(t, filepath.Join(state, "run.json")) != rec {
				t.Fatal("a refused resume changed the file journal or the run record")
			}
		})
	}
}

// ledgerWord flips a bit of the ledger's count of stdout bytes emitted,
// in its first copy (and in its second, if both): word 3 in the format
// without copies (version 1), word 4 in the one with (version 2), whose
// second copy is the second half of the file.
func ledgerWord(t *testing.T, path string, both bool) {
	t.Helper()
	b := readAll(t, path)
	w := 3
	if binary.NativeEndian.Uint64(b[8:]) == 2 {
		w = 4
	}
	b[8*w+5] ^= 0x40
	if both {
		b[len(b)/2+8*w+5] ^= 0x40
	}
	os.WriteFile(path, b, 0o644)
}

// The output ledger is protected: with stdout a pipe (no file size to
// read the truth from), one flipped bit costs nothing; a ledger damaged
// in both copies or lost is reported in one warning line and the output
// is printed again from the checkpoint restored: lines may repeat, none is
// lost.
func TestDamagedLedger(t *testing.T) {
	t.Parallel()
	wasm := guest(t, "tests/testdata/timer")
	want := plainRun(t, wasm)
	for _, tc := range []struct {
		name  string
		edit  func(path string)
		exact bool
	}{
		{"one bit", func(p string) { ledgerWord(t, p, false) }, true},
		{"both copies", func(p string) { ledgerWord(t, p, true) }, false},
		{"deleted", func(p string) { os.Remove(p) }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			state := filepath.Join(t.TempDir(), "st")
			var before bytes.Buffer
			cmd := exec.Command(librahost, "run", "--state", state, "--checkpoint-every", "150ms", wasm)
			cmd.Stdout = &before // a pipe
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			waitEpoch(t, state, 2)
			cmd.Process.Signal(syscall.SIGKILL)
			cmd.Wait()
			tc.edit(filepath.Join(state, "output.ledger"))
			var after, errb bytes.Buffer
			cmd = exec.Command(librahost, "run", "--resume", "--state", state, wasm)
			cmd.Stdout, cmd.Stderr = &after, &errb
			if err := cmd.Run(); err != nil {
				t.Fatalf("resume: %v\n%s", err, errb.Bytes())
			}
			if warned := strings.Contains(errb.String(), "output ledger"); warned == tc.exact || strings.Count(errb.String(), "\n") > 1 {
				t.Fatalf("warning (want one: %v):\n%s", !tc.exact, errb.String())
			}
			got := append(bytes.Clone(before.Bytes()), after.Bytes()...)
			if tc.exact {
				compareOutput(t, got, want)
				return
			}
			// Printed again from the checkpoint: the output before the kill,
			// then the rest of the run from a point not after it.
			from := len(want) - after.Len()
			if !bytes.HasPrefix(want, before.Bytes()) || from < 0 || from > before.Len() || !bytes.HasSuffix(want, after.Bytes()) {
				t.Fatalf("output lost or wrong:\nbefore the kill:\n%s\nafter:\n%s", before.Bytes(), after.Bytes())
			}
		})
	}
}

// A job's state dir: a store of another run of the job is refused naming
// what differs; a lost output ledger is said in one line and each rank
// prints again from its checkpoint, losing nothing.
func TestJobDamagedState(t *testing.T) {
	t.Parallel()
	wasm := guest(t, "samples/heat")
	args := []string{"-steps", "400", "-every", "20"}
	want := jobRun(t, "3", wasm, args...)
	stateA, outA := killedRun(t, t.TempDir(), wasm, 2, []string{"-n", "3"}, args...)
	stateB, _ := killedRun(t, t.TempDir(), wasm, 2, []string{"-n", "3"}, "-steps", "500", "-every", "20")
	t.Run("store of another run", func(t *testing.T) {
		t.Parallel()
		state := filepath.Join(t.TempDir(), "st")
		copyDir(t, stateA, state)
		other := filepath.Join(t.TempDir(), "b")
		copyDir(t, stateB, other)
		moveStore(t, other, state)
		refused(t, state, `"500" "-every" "20"], this run's [`, "run", "--resume", "--state", state)
	})
	t.Run("ledger lost", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		state, outPath := filepath.Join(dir, "st"), filepath.Join(dir, "out")
		copyDir(t, stateA, state)
		before := readAll(t, outA)
		os.WriteFile(outPath, before, 0o644)
		os.Remove(filepath.Join(state, "output.ledger"))
		stderr := resumeOK(t, state, outPath)
		if !strings.Contains(stderr, "output ledger") || !strings.Contains(stderr, "is missing") {
			t.Fatalf("the lost ledger was not reported:\n%s", stderr)
		}
		after := readAll(t, outPath)[len(before):]
		if from := len(want) - len(after); !bytes.HasPrefix(want, before) || from < 0 || from > len(before) || !bytes.HasSuffix(want, after) {
			t.Fatalf("output lost or wrong:\nbefore the kill:\n%s\nafter:\n%s", before, after)
		}
	})
}

// In a job, a damaged seal in one rank's file journal makes the whole job
// fall back to the epoch before; files and output end up as an
// uninterrupted run's.
func TestJobDamagedJournalSeal(t *testing.T) {
	t.Parallel()
	wasm := guest(t, "tests/testdata/jobfiles")
	args := []string{"-laps", "3000"}
	want := jobRun(t, "3", wasm, append([]string{"--dir", t.TempDir() + ":/data"}, args...)...)
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	os.Mkdir(data, 0o755)
	state, outPath := killedRun(t, dir, wasm, 2, []string{"-n", "3", "--dir", data + ":/data"}, args...)
	newest := newestEpoch(t, state)
	damageSeal(t, filepath.Join(state, "files.journal.1"), newest)
	resumeSays(t, state, outPath, want, []string{"rank 1: ", "files.journal.1 is damaged at offset", "falls back"})
}
