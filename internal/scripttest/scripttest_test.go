package scripttest

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	src := "# a comment\n\necho a\n----\na\n\nnone\n----\n\ntwo\n----\nx\ny\n"
	blocks, err := Parse("s", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	want := []Block{
		{Pre: "# a comment\n\n", Cmd: "echo a", Want: "a", Line: 3},
		{Pre: "", Cmd: "none", Want: "", Line: 7},
		{Pre: "", Cmd: "two", Want: "x\ny", Line: 10},
	}
	if len(blocks) != len(want) {
		t.Fatalf("got %d blocks, want %d: %+v", len(blocks), len(want), blocks)
	}
	for i := range want {
		if blocks[i] != want[i] {
			t.Errorf("block %d: got %+v, want %+v", i, blocks[i], want[i])
		}
	}
	if _, err := Parse("s", []byte("cmd\nno dashes\n")); err == nil || !strings.Contains(err.Error(), "s:2: want ----") {
		t.Errorf("a command without ---- gave %v", err)
	}
}

// TestRewrite: a rewritten script keeps its comments and takes the
// outputs given; run again, it passes.
func TestRewrite(t *testing.T) {
	file := filepath.Join(t.TempDir(), "s.txt")
	if err := os.WriteFile(file, []byte("# c\nup a\n----\nold\n\nup b\n----\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	up := func(cmd string) string { return strings.ToUpper(strings.TrimPrefix(cmd, "up ")) + "\n" }
	Run(t, file, true, up)
	got, _ := os.ReadFile(file)
	if want := "# c\nup a\n----\nA\n\nup b\n----\nB\n"; string(got) != want {
		t.Fatalf("rewritten:\n%q\nwant:\n%q", got, want)
	}
	Run(t, file, false, up)
}

// TestMismatch: an output that differs from the expected one fails the
// test and names the line.
func TestMismatch(t *testing.T) {
	file := filepath.Join(t.TempDir(), "s.txt")
	if err := os.WriteFile(file, []byte("up a\n----\nB\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	ft := &fakeT{TB: t}
	Run(ft, file, false, func(string) string { return "A" })
	if len(ft.errs) != 1 || !strings.Contains(ft.errs[0], "s.txt:1: up a") {
		t.Fatalf("errors: %q", ft.errs)
	}
}

type fakeT struct {
	testing.TB
	errs []string
}

func (f *fakeT) Errorf(format string, args ...any) {
	f.errs = append(f.errs, fmt.Sprintf(format, args...))
}
