package tests

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// wordcountInput makes the input of samples/wordcount in a new directory
// (mounted at /data) and returns it.
func wordcountInput(t *testing.T, wasm string, files string) string {
	t.Helper()
	dir := t.TempDir()
	jobRun(t, "1", wasm, "--dir", dir+":/data", "-gen", files, "-words", "5000")
	return dir
}

// wordcountResult returns every "word count" line of the result files in
// dir/out, sorted: the same for any number of workers.
func wordcountResult(t *testing.T, dir string) []string {
	t.Helper()
	parts, _ := filepath.Glob(filepath.Join(dir, "out", "part-*.txt"))
	var lines []string
	for _, p := range parts {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		lines = append(lines, strings.Split(strings.TrimSpace(string(b)), "\n")...)
	}
	slices.Sort(lines)
	return lines
}

// Map/reduce over files in a mounted directory: four workers and three
// count the same words, and their result files hold the same counts.
func TestRunJobWordcount(t *testing.T) {
	t.Parallel()
	wasm := guest(t, "samples/wordcount")
	dir := wordcountInput(t, wasm, "12")
	out4 := jobRun(t, "4", wasm, "--dir", dir+":/data")
	if !bytes.HasPrefix(out4, []byte("wordcount: 12 files, 60000 words, ")) || bytes.Count(out4, []byte("\n")) != 11 {
		t.Fatalf("four workers:\n%s", out4)
	}
	res4 := wordcountResult(t, dir)
	if parts, _ := filepath.Glob(filepath.Join(dir, "out", "part-*.txt")); len(parts) != 4 {
		t.Fatalf("%d result files, want 4", len(parts))
	}
	if err := os.RemoveAll(filepath.Join(dir, "out")); err != nil {
		t.Fatal(err)
	}
	out3 := jobRun(t, "3", wasm, "--dir", dir+":/data")
	if want := bytes.Replace(out4, []byte("on 4 workers"), []byte("on 3 workers"), 1); !bytes.Equal(out3, want) {
		t.Fatalf("three workers printed\n%s\nfour printed\n%s", out3, out4)
	}
	if res3 := wordcountResult(t, dir); !slices.Equal(res3, res4) || len(res4) < 1000 {
		t.Fatalf("result files differ between 3 and 4 workers (%d and %d lines)", len(res3), len(res4))
	}
}
