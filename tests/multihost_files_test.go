package tests

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
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
	wasm := guest(t, "samples/wordcount")
	input := filepath.Join(wordcountInput(t, wasm, "12"), "in")
	wantOut := t.TempDir()
	args := []string{"-in", "/in", "-out", "/out"}
	want, stderr, code := lh(t, append([]string{"run", "-n", "6", "--dir", input + ":/in:ro", "--dir", wantOut + ":/out", wasm, "--"}, args...)...)
	if code != 0 || !strings.HasPrefix(want, "wordcount: 12 files, 60000 words, ") {
		t.Fatalf("run -n 6: exit %d\n%s%s", code, want, stderr)
	}
	cluster := filepath.Join(t.TempDir(), "cluster")
	hs, cwds := wordcountHosts(t, cluster, input, "a", "b", "c")
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
// and returns them with those directories.
func wordcountHosts(t *testing.T, cluster, input string, names ...string) ([]*hostProc, []string) {
	t.Helper()
	if _, stderr, code := lh(t, "cluster", "init", cluster, "--hosts", strings.Join(names, " ")); code != 0 {
		t.Fatal(stderr)
	}
	var hs []*hostProc
	var cwds []string
	for _, n := range names {
		cwd := filepath.Join(t.TempDir(), n)
		copyTree(t, input, filepath.Join(cwd, "in"))
		if err := os.MkdirAll(filepath.Join(cwd, "out"), 0o755); err != nil {
			t.Fatal(err)
		}
		cwds = append(cwds, cwd)
		hs = append(hs, startHostProcIn(t, cwd, cluster, nil, nil, n, filepath.Join(t.TempDir(), n+"-data")))
	}
	return hs, cwds
}

// The files a rank wrote move with it: samples/wordcount over four
// hosts, checkpointed, loses host c after the second committed epoch (its
// --data and its out/ wiped); d restarts c's rank and makes its files
// from its checkpoints' replicas, and copies its earlier checkpoints to
// a; then d dies the same way, and a makes the files of d's ranks and of
// c's again. The output and the result files of hosts a and b together
// are byte for byte those of `run -n 6`.
func TestMultiHostDirsRecovery(t *testing.T) {
	wasm := guest(t, "samples/wordcount")
	gen := t.TempDir()
	jobRun(t, "1", wasm, "--dir", gen+":/data", "-gen", "160", "-words", "40000")
	input := filepath.Join(gen, "in")
	wantOut := t.TempDir()
	args := []string{"-in", "/in", "-out", "/out"}
	want, stderr, code := lh(t, append([]string{"run", "-n", "6", "--dir", input + ":/in:ro", "--dir", wantOut + ":/out", wasm, "--"}, args...)...)
	if code != 0 {
		t.Fatalf("run -n 6: exit %d\n%s%s", code, want, stderr)
	}
	for _, tc := range []struct {
		name  string
		hosts []string
		place []string // the ranks' hosts after each death
	}{
		{"two-deaths", []string{"a", "b", "c", "d"}, []string{"a b d d a b", "a b a a a b"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cluster := filepath.Join(t.TempDir(), "cluster")
			hs, cwds := wordcountHosts(t, cluster, input, tc.hosts...)
			sub := submitBg(t, append([]string{"--cluster", cluster, "--hosts", hostList(hs), "-n", "6",
				"--checkpoint-every", "100ms", "--dir", "in:/in:ro", "--dir", "out:/out", wasm, "--"}, args...)...)
			kill := func(i int) { // its out directory goes with the machine
				hs[i].lose(t)
				if err := os.RemoveAll(cwds[i]); err != nil {
					t.Fatal(err)
				}
			}
			waitHostLog(t, hs[2], regexp.MustCompile(`epoch 2 committed`), sub.done)
			kill(2)
			if len(hs) == 4 {
				// d holds c's rank 2, its files made, and its earlier
				// checkpoints copied to a, and a later epoch is committed.
				waitHostLog(t, hs[3], regexp.MustCompile(`(?s)rank 2: its checkpoints up to \d+ made on another host are on hosts.*epoch \d+ committed`), sub.done)
				kill(3)
			}
			<-sub.done
			if sub.err != nil {
				t.Fatalf("submit: %v\n%s", sub.err, sub.errb.Bytes())
			}
			compareOutput(t, sub.out.Bytes(), []byte(want))
			sameFiles(t, wantOut, filepath.Join(cwds[0], "out"), filepath.Join(cwds[1], "out"))
			ended := make(chan struct{})
			close(ended)
			for i, p := range tc.place {
				waitHostLog(t, hs[0], regexp.MustCompile(fmt.Sprintf(`incarnation %d: ranks on \[%s\]`, i+1, p)), ended)
			}
		})
	}
}
