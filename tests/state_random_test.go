package tests

import (
	"bytes"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Random damage to each file of a state dir that is not the checkpoint
// store (run.json, module.wasm, output.ledger, files.journal): flipped
// bytes, a cut, or the file gone. A resume never panics and never prints
// wrong output silently: it refuses in one line, changing no checkpoint,
// or it runs to the end printing exactly the uninterrupted run's output,
// or, having said that the output ledger could not be trusted, that
// output with lines since the checkpoint possibly repeated, none lost.
// LIBRAHOST_CORRUPT_SEED replays a failure.
func TestCorruptStateFiles(t *testing.T) {
	t.Parallel()
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("LIBRAHOST_CORRUPT_SEED"); s != "" {
		seed, _ = strconv.ParseUint(s, 10, 64)
	}
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 3))
	wasm := guest(t, "tests/testdata/timer")
	want := plainRun(t, wasm)
	state0, out0 := prepareState(t, wasm)
	before := readAll(t, out0)
	for _, name := range []string{"run.json", "module.wasm", "output.ledger", "files.journal"} {
		for range 3 {
			dir := t.TempDir()
			state := filepath.Join(dir, "st")
			copyDir(t, state0, state)
			outPath := filepath.Join(dir, "out")
			os.WriteFile(outPath, before, 0o644)
			path := filepath.Join(state, name)
			b := readAll(t, path)
			what := ""
			switch k := rng.IntN(5); {
			case k == 0:
				os.Remove(path)
				what = "removed"
			case k == 1 && len(b) > 0:
				n := rng.IntN(len(b))
				os.WriteFile(path, b[:n], 0o644)
				what = "cut at " + strconv.Itoa(n)
			default:
				for range 1 + rng.IntN(8) {
					i := rng.IntN(len(b))
					if name == "output.ledger" && len(b) == 8192 { // its records, in either copy
						i = rng.IntN(17*8) + rng.IntN(2)*4096
					}
					b[i] ^= byte(1 + rng.IntN(255))
					what += " " + strconv.Itoa(i)
				}
				os.WriteFile(path, b, 0o644)
				what = "bytes changed at" + what
			}
			store := storeSum(t, state)
			var errb bytes.Buffer
			argv := []string{"run", "--resume", "--state", state}
			if rng.IntN(2) == 0 {
				argv = append(argv, wasm) // else the state dir's copy of the module
				what += ", module given"
			}
			cmd := exec.Command(librahost, argv...)
			cmd.Stdout, cmd.Stderr = appendTo(t, outPath), &errb
			err := cmd.Run()
			stderr := errb.String()
			got := readAll(t, outPath)
			desc := name + " " + what
			if strings.Contains(stderr, "panic:") || strings.Contains(stderr, "goroutine ") {
				t.Fatalf("%s: a Go panic:\n%s", desc, stderr)
			}
			if err != nil {
				var errLines []string
				for _, l := range strings.Split(strings.TrimSpace(stderr), "\n") {
					if !strings.HasPrefix(l, "librahost: warning:") {
						errLines = append(errLines, l)
					}
				}
				if len(errLines) != 1 || !strings.HasPrefix(errLines[0], "librahost run: ") || !bytes.Equal(got, before) {
					t.Fatalf("%s: exit %v, want one line saying why and no output:\n%s", desc, err, stderr)
				}
				if storeSum(t, state) != store {
					t.Fatalf("%s: a refused resume changed the checkpoint store", desc)
				}
				t.Logf("%s: refused: %s", desc, errLines[0])
				continue
			}
			if !strings.Contains(stderr, "output ledger") {
				if !bytes.Equal(got, want) {
					t.Fatalf("%s: output differs from an uninterrupted run's, without a word:\n%s\nstderr:\n%s", desc, got, stderr)
				}
				t.Logf("%s: resumed exactly", desc)
				continue
			}
			after := got[len(before):]
			if from := len(want) - len(after); from < 0 || from > len(before) || !bytes.HasSuffix(want, after) {
				t.Fatalf("%s: output lost or wrong:\n%s", desc, got)
			}
			t.Logf("%s: resumed, printing again from the checkpoint", desc)
		}
	}
}
