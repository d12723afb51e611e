package tests

import (
	"bytes"
	"flag"
	"io/fs"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

var (
	corruptSeeds = flag.Int("corrupt-seeds", 8, "TestCorruptRandom: how many random damages to try")
	corruptSeed  = flag.Int64("corrupt-seed", -1, "TestCorruptRandom: replay this seed only")
)

// TestCorruptRandom damages one file of a killed run's state directory at
// random (bytes flipped, zeroed, cut short, appended to, or the file
// deleted), as a failing disk or a careless hand would, and resumes: the
// run either finishes with exactly the output and files of an
// uninterrupted run, or refuses in one line. Never a panic, never wrong
// output with success. Replay a seed with -corrupt-seed N; try more with
// -corrupt-seeds N.
func TestCorruptRandom(t *testing.T) {
	t.Parallel()
	wasm := guest(t, "tests/testdata/files")
	args := []string{"/data", "200"}
	refDir := t.TempDir()
	var refOut, refErr bytes.Buffer
	cmd := exec.Command(librahost, append([]string{"run", "--dir", refDir + ":/data", wasm, "--"}, args...)...)
	cmd.Stdout, cmd.Stderr = &refOut, &refErr
	if err := cmd.Run(); err != nil {
		t.Fatalf("uninterrupted run: %v\n%s", err, refErr.Bytes())
	}
	wantTree := tree(t, refDir)

	// Seed 0 damages nothing: the resume must be exact.
	first, n := int64(0), int64(*corruptSeeds)
	if *corruptSeed >= 0 {
		first, n = *corruptSeed, 1
	}
	refused := 0
	for seed := first; seed < first+n; seed++ {
		rng := rand.New(rand.NewPCG(uint64(seed), 7))
		dir := t.TempDir()
		data := filepath.Join(dir, "data")
		os.Mkdir(data, 0o755)
		mount := []string{"--dir", data + ":/data"}
		state, outPath := killedRun(t, dir, wasm, 3, mount, args...)
		victim, how := "nothing", "damaged"
		if seed != 0 {
			files := stateFiles(state)
			victim = files[rng.IntN(len(files))]
			how = damage(t, rng, filepath.Join(state, victim))
		}
		out := appendTo(t, outPath)
		var errb bytes.Buffer
		cmd := exec.Command(librahost, append(append([]string{"run", "--resume", "--state", state}, mount...), append([]string{wasm, "--"}, args...)...)...)
		cmd.Stdout, cmd.Stderr = out, &errb
		err := cmd.Run()
		out.Close()
		stderr := errb.String()
		what := "seed " + itoa64(seed) + ": " + victim + " " + how
		for _, bad := range []string{"panic", "goroutine ", "fatal error", "SIGSEGV", "SIGBUS", "runtime error"} {
			if strings.Contains(stderr, bad) {
				t.Errorf("%s: a Go crash instead of an error line:\n%s", what, stderr)
			}
		}
		if err == nil {
			if got := readAll(t, outPath); !bytes.Equal(got, refOut.Bytes()) {
				t.Errorf("%s: the resume succeeded with output that differs from an uninterrupted run's\nstderr:\n%s", what, stderr)
			}
			if tree(t, data) != wantTree {
				t.Errorf("%s: the resume succeeded with files that differ from an uninterrupted run's\nstderr:\n%s", what, stderr)
			}
			t.Logf("%s: resumed (%s)", what, strings.TrimSpace(stderr))
			continue
		}
		refused++
		lines := strings.Split(strings.TrimSpace(stderr), "\n")
		last := lines[len(lines)-1]
		if !strings.HasPrefix(last, "librahost") || !strings.Contains(last, ": ") || len(last) > 600 {
			t.Errorf("%s: refused without a one-line error:\n%s", what, stderr)
		}
		t.Logf("%s: refused: %s", what, last)
	}
	t.Logf("%d of %d damaged state directories refused, the others resumed exactly", refused, n)
}

// stateFiles lists the regular files under dir, relative to it.
func stateFiles(dir string) []string {
	var files []string
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			rel, _ := filepath.Rel(dir, p)
			files = append(files, rel)
		}
		return nil
	})
	slices.Sort(files)
	return files
}

// damage harms the file at path in a way chosen by rng and says how.
func damage(t *testing.T, rng *rand.Rand, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	how := ""
	switch k := rng.IntN(5); {
	case k == 0 && len(b) > 0:
		n := 1 + rng.IntN(8)
		for range n {
			b[rng.IntN(len(b))] ^= byte(1 + rng.IntN(255))
		}
		how = "with " + itoa64(int64(n)) + " bytes changed"
	case k == 1 && len(b) > 0:
		off := rng.IntN(len(b))
		end := min(len(b), off+1+rng.IntN(8192))
		clear(b[off:end])
		how = "zeroed at " + itoa64(int64(off)) + ".." + itoa64(int64(end))
	case k == 2 && len(b) > 0:
		n := rng.IntN(len(b))
		b = b[:n]
		how = "cut to " + itoa64(int64(n)) + " bytes"
	case k == 3:
		extra := make([]byte, 1+rng.IntN(4096))
		for i := range extra {
			extra[i] = byte(rng.IntN(256))
		}
		b = append(b, extra...)
		how = "with " + itoa64(int64(len(extra))) + " bytes appended"
	default:
		if err := os.Remove(path); err != nil {
			t.Fatal(err)
		}
		return "deleted"
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return how
}

func itoa64(n int64) string { return strconv.FormatInt(n, 10) }
