package tests

import (
	"bytes"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"
)

// tree describes every file and directory under root: path, kind, size and
// contents.
func tree(t *testing.T, root string) string {
	t.Helper()
	var lines []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if d.IsDir() {
			lines = append(lines, rel+"/")
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		lines = append(lines, fmt.Sprintf("%s %d %x", rel, len(b), b))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

// A guest that writes, truncates, renames, creates and deletes files is
// SIGKILLed and resumed many times: its files and its output end up
// byte-identical to an uninterrupted run's.
func TestKillResumeFiles(t *testing.T) {
	wasm := guest(t, "tests/testdata/files")
	const steps = "150"
	refDir := t.TempDir()
	var refOut, refErr bytes.Buffer
	cmd := exec.Command(librahost, "run", "--dir", refDir+":/data", wasm, "--", "/data", steps)
	cmd.Stdout, cmd.Stderr = &refOut, &refErr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%v\n%s", err, refErr.Bytes())
	}
	want := tree(t, refDir)

	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 1))
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	os.Mkdir(data, 0o755)
	state := filepath.Join(dir, "st")
	outPath := filepath.Join(dir, "out")
	out := appendTo(t, outPath)
	kills := 0
	defer func() { t.Logf("%d kills", kills) }()
	for i := 0; ; i++ {
		argv := []string{"run", "--state", state, "--checkpoint-every", "150ms", "--dir", data + ":/data"}
		if i > 0 {
			argv = append(argv, "--resume")
		}
		cmd := exec.Command(librahost, append(argv, wasm, "--", "/data", steps)...)
		var errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = out, &errb
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		if i < 8 {
			select {
			case err := <-done:
				checkExit(t, err, errb.Bytes())
				i = 1 << 20
			case <-time.After(time.Duration(200+rng.IntN(900)) * time.Millisecond):
				cmd.Process.Signal(syscall.SIGKILL)
				<-done
				kills++
				continue
			}
		} else {
			checkExit(t, <-done, errb.Bytes())
		}
		break
	}
	compareOutput(t, readAll(t, outPath), refOut.Bytes())
	if got := tree(t, data); got != want {
		t.Fatalf("files differ from the uninterrupted run's:\ngot:\n%.2000s\nwant:\n%.2000s", got, want)
	}
}
