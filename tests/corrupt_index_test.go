package tests

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// viewIndex reads a state dir's index with bbolt; f gets its page size.
func viewIndex(t *testing.T, state string, f func(tx *bolt.Tx, pageSize int)) {
	t.Helper()
	db, err := bolt.Open(filepath.Join(state, "ckpt.db"), 0o644, &bolt.Options{Timeout: time.Second, ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	db.View(func(tx *bolt.Tx) error {
		f(tx, db.Info().PageSize)
		return nil
	})
}

// bucketRoot returns the page number of a bucket's root page and the
// file's page size.
func bucketRoot(t *testing.T, state, bucket string) (root uint64, pageSize int) {
	t.Helper()
	viewIndex(t, state, func(tx *bolt.Tx, ps int) {
		root, pageSize = uint64(tx.Bucket([]byte(bucket)).Root()), ps
	})
	if root == 0 {
		t.Fatalf("bucket %s is inline: no page of its own to damage", bucket)
	}
	return root, pageSize
}

// usedSize is the part of the index that holds its pages (bbolt grows the
// file ahead of them), and its page size.
func usedSize(t *testing.T, state string) (size int64, pageSize int) {
	t.Helper()
	viewIndex(t, state, func(tx *bolt.Tx, ps int) { size, pageSize = tx.Size(), ps })
	return size, pageSize
}

// flipPageHeader inverts 8 bytes of a page header (flags, count and
// overflow), as a failing disk would.
func flipPageHeader(t *testing.T, state string, page uint64, pageSize int) {
	t.Helper()
	f, err := os.OpenFile(filepath.Join(state, "ckpt.db"), os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, 8)
	off := int64(page)*int64(pageSize) + 8
	f.ReadAt(b, off)
	for i := range b {
		b[i] ^= 0xff
	}
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}

// A damaged checkpoint index (ckpt.db) is refused in one line that names
// the repair, by resume and by ckpt ls alike, and changes nothing; after
// `ckpt repair` every checkpoint is back (a damaged page header or a cut
// last page loses none), the run resumes and its output is exactly once.
func TestDamagedIndex(t *testing.T) {
	t.Parallel()
	wasm := guest(t, "tests/testdata/timer")
	want := plainRun(t, wasm)
	state0, out0 := prepareState(t, wasm)
	newest := newestEpoch(t, state0)
	for _, tc := range []struct {
		name   string
		damage func(t *testing.T, state string)
		kept   bool // whether repair keeps every checkpoint (else none)
	}{
		{"refs root header", func(t *testing.T, state string) {
			root, ps := bucketRoot(t, state, "refs")
			flipPageHeader(t, state, root, ps)
		}, true},
		{"manifests root header", func(t *testing.T, state string) {
			root, ps := bucketRoot(t, state, "manifests")
			flipPageHeader(t, state, root, ps)
		}, true},
		{"last page cut", func(t *testing.T, state string) {
			used, ps := usedSize(t, state)
			if err := os.Truncate(filepath.Join(state, "ckpt.db"), used-int64(ps)); err != nil {
				t.Fatal(err)
			}
		}, true},
		{"truncated to 8192", func(t *testing.T, state string) {
			if err := os.Truncate(filepath.Join(state, "ckpt.db"), 8192); err != nil {
				t.Fatal(err)
			}
		}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			state := filepath.Join(dir, "st")
			copyDir(t, state0, state)
			outPath := filepath.Join(dir, "out")
			os.WriteFile(outPath, readAll(t, out0), 0o644)
			tc.damage(t, state)
			damaged := fileSum(t, filepath.Join(state, "ckpt.db"))
			repair := "librahost ckpt repair --state " + state
			for _, args := range [][]string{{"run", "--resume", "--state", state, wasm}, {"ckpt", "ls", "--state", state}} {
				stdout, stderr, code := lh(t, args...)
				if code != 1 || stdout != "" {
					t.Fatalf("%s: exit %d, stdout %q\n%s", args[0], code, stdout, stderr)
				}
				oneLineError(t, stderr, repair)
				if !strings.Contains(stderr, filepath.Join(state, "ckpt.db")+" is damaged") {
					t.Fatalf("%s: the refusal does not name the file:\n%s", args[0], stderr)
				}
			}
			if fileSum(t, filepath.Join(state, "ckpt.db")) != damaged {
				t.Fatal("a refused resume changed the damaged index")
			}
			stdout, stderr, code := lh(t, "ckpt", "repair", "--state", state)
			if code != 0 || !strings.Contains(stdout, "repaired") {
				t.Fatalf("repair: exit %d\n%s%s", code, stdout, stderr)
			}
			if fileSum(t, filepath.Join(state, "ckpt.db.damaged")) != damaged {
				t.Fatal("the damaged index is not kept as ckpt.db.damaged")
			}
			t.Logf("repair: %s", strings.TrimSpace(stdout))
			if !tc.kept {
				if !strings.Contains(stdout, "no checkpoint could be kept") {
					t.Fatalf("repair of an index with no page left:\n%s", stdout)
				}
				return
			}
			if got := newestEpoch(t, state); got != newest {
				t.Fatalf("after repair the newest epoch is %d, want %d", got, newest)
			}
			out := appendTo(t, outPath)
			var errb bytes.Buffer
			cmd := exec.Command(librahost, "run", "--resume", "--state", state, wasm)
			cmd.Stdout, cmd.Stderr = out, &errb
			if err := cmd.Run(); err != nil {
				t.Fatalf("resume after repair: %v\n%s", err, errb.Bytes())
			}
			compareOutput(t, readAll(t, outPath), want)
		})
	}
}

// ckpt verify reads every chunk: a damaged chunk shared by every kept
// epoch is reported against each of them, with exit code 1; a sound
// store passes.
func TestVerifyCheckpoints(t *testing.T) {
	t.Parallel()
	wasm := guest(t, "tests/testdata/timer")
	state, _ := prepareState(t, wasm)
	stdout, stderr, code := lh(t, "ckpt", "verify", "--state", state)
	if code != 0 || strings.Contains(stdout, "damaged:") || stderr != "" {
		t.Fatalf("verify of a sound store: exit %d\n%s%s", code, stdout, stderr)
	}
	epochs := strings.Count(stdout, " ok\n")
	editStore(t, state, corruptOldestValue)
	stdout, stderr, code = lh(t, "ckpt", "verify", "--state", state)
	if code != 1 {
		t.Fatalf("verify of a damaged chunk: exit %d\n%s%s", code, stdout, stderr)
	}
	oneLineError(t, stderr, "cannot be resumed from")
	if n := strings.Count(stdout, "damaged: chunk"); n == 0 || n+strings.Count(stdout, " ok\n") != epochs {
		t.Fatalf("want each of %d epochs listed, the damaged ones as such:\n%s", epochs, stdout)
	}
	if !strings.Contains(stdout, "1 damaged") {
		t.Fatalf("want one damaged chunk counted:\n%s", stdout)
	}
}

// corruptOldestValue flips a byte in the middle of the first chunk value
// of the first segment: one written by the first checkpoint, and kept
// while a later epoch shares it.
func corruptOldestValue(tx *bolt.Tx, segDir string) error {
	f, err := os.OpenFile(filepath.Join(segDir, "000001"), os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("no first segment: %w", err)
	}
	defer f.Close()
	b := make([]byte, 1)
	if _, err := f.ReadAt(b, 40); err != nil {
		return err
	}
	b[0] ^= 0x10
	_, err = f.WriteAt(b, 40)
	return err
}

// --keep sets how many checkpoints a run keeps: more epochs to fall back
// to when a chunk they share is damaged.
func TestKeepEpochs(t *testing.T) {
	t.Parallel()
	wasm := guest(t, "tests/testdata/timer")
	_, stderr, code := lh(t, "run", "--keep", "0", "--state", filepath.Join(t.TempDir(), "st"), wasm)
	if code != 1 {
		t.Fatalf("--keep 0: exit %d\n%s", code, stderr)
	}
	oneLineError(t, stderr, "--keep 0")
	for _, keep := range []int{1, 4} {
		state := filepath.Join(t.TempDir(), "st")
		cmd := exec.Command(librahost, "run", "--keep", fmt.Sprint(keep), "--state", state, "--checkpoint-every", "100ms", wasm)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		waitEpoch(t, state, uint64(keep)+1)
		cmd.Process.Kill()
		cmd.Wait()
		ls, stderr, code := lh(t, "ckpt", "ls", "--state", state)
		if rows := strings.Count(strings.TrimSpace(ls), "\n"); code != 0 || rows != keep {
			t.Fatalf("--keep %d: %d checkpoints listed (exit %d)\n%s%s", keep, rows, code, ls, stderr)
		}
	}
}

// A job's damaged index is refused and repaired like a single run's: the
// commit records of its epochs are kept with its ranks' checkpoints, and
// the job resumes with its output exactly once.
func TestDamagedJobIndex(t *testing.T) {
	t.Parallel()
	state, outPath, out, want := killedHeatJob(t)
	newest := newestEpoch(t, state)
	root, ps := bucketRoot(t, state, "refs")
	flipPageHeader(t, state, root, ps)
	_, stderr, code := lh(t, "run", "--resume", "--state", state)
	if code != 1 {
		t.Fatalf("resume of a damaged index: exit %d\n%s", code, stderr)
	}
	oneLineError(t, stderr, "librahost ckpt repair --state "+state)
	if stdout, stderr, code := lh(t, "ckpt", "repair", "--state", state); code != 0 {
		t.Fatalf("repair: exit %d\n%s%s", code, stdout, stderr)
	}
	if got := newestEpoch(t, state); got != newest {
		t.Fatalf("after repair the newest job epoch is %d, want %d", got, newest)
	}
	if stdout, stderr, code := lh(t, "ckpt", "verify", "--state", state); code != 0 {
		t.Fatalf("verify after repair: exit %d\n%s%s", code, stdout, stderr)
	}
	var errb bytes.Buffer
	resume := exec.Command(librahost, "run", "--resume", "--state", state)
	resume.Stdout, resume.Stderr = out, &errb
	if err := resume.Run(); err != nil {
		t.Fatalf("resume after repair: %v\n%s", err, errb.Bytes())
	}
	compareOutput(t, readAll(t, outPath), want)
}

// killedHeatJob runs the heat sample as a job of 3 workers with frequent
// checkpoints, not paced (waitDurable), and kills it after its third
// durable one. It returns the
// state dir, the file its output went to (open for appending, as out)
// and what an uninterrupted run prints.
func killedHeatJob(t *testing.T) (state, outPath string, out *os.File, want []byte) {
	t.Helper()
	wasm := guest(t, "samples/heat")
	args := []string{"-steps", "400", "-every", "20"}
	want = jobRun(t, "3", wasm, args...)
	dir := t.TempDir()
	state = filepath.Join(dir, "st")
	outPath = filepath.Join(dir, "out")
	out = appendTo(t, outPath)
	p := startProc(t, out, nil, append([]string{"run", "-n", "3", "--state", state, "--checkpoint-every", "150ms", "--checkpoint-overhead", "off", wasm, "--"}, args...)...)
	p.mustDurable(t, 3)
	p.kill()
	return state, outPath, out, want
}
