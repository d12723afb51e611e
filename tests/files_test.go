package tests

import (
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
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
// SIGKILLed and resumed up to 8 times: its files and its output end up
// byte-identical to an uninterrupted run's.
func TestKillResumeFiles(t *testing.T) {
	t.Parallel()
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

	data := filepath.Join(t.TempDir(), "data")
	os.Mkdir(data, 0o755)
	got := killResumeFlags(t, []string{"--dir", data + ":/data"}, wasm, 8, "150ms", "/data", steps)
	compareOutput(t, got, refOut.Bytes())
	if got := tree(t, data); got != want {
		t.Fatalf("files differ from the uninterrupted run's:\ngot:\n%.2000s\nwant:\n%.2000s", got, want)
	}
}
