package scripttest

import (
	"bytes"
	"fmt"
	"os"
	"strings"
	"testing"
)

// Block is one command of a script and the output expected of it.
type Block struct {
	Pre  string // the comments and blank lines before the command
	Cmd  string
	Want string
	Line int // the command's line in its file
}

// Parse reads the blocks of a script.
func Parse(name string, data []byte) ([]Block, error) {
	var blocks []Block
	var pre strings.Builder
	lines := strings.Split(string(data), "\n")
	for i := 0; i < len(lines); i++ {
		l := lines[i]
		if strings.TrimSpace(l) == "" || strings.HasPrefix(l, "#") {
			pre.WriteString(l + "\n")
			continue
		}
		b := Block{Pre: pre.String(), Cmd: l, Line: i + 1}
		pre.Reset()
		i++
		if i >= len(lines) || lines[i] != "----" {
			return nil, fmt.Errorf("%s:%d: want ---- after command", name, i+1)
		}
		var want []string
		for i++; i < len(lines) && lines[i] != ""; i++ {
			want = append(want, lines[i])
		}
		b.Want = strings.Join(want, "\n")
		blocks = append(blocks, b)
	}
	return blocks, nil
}

// Run runs the script in file through run, which returns a command's
// output. With rewrite it writes file again with the outputs run gave;
// otherwise each output that differs from the expected one is an error.
func Run(t testing.TB, file string, rewrite bool, run func(cmd string) string) {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	blocks, err := Parse(file, data)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	for _, b := range blocks {
		got := strings.TrimRight(run(b.Cmd), "\n")
		if rewrite {
			fmt.Fprintf(&out, "%s%s\n----\n", b.Pre, b.Cmd)
			if got != "" {
				out.WriteString(got + "\n")
			}
			out.WriteString("\n")
			continue
		}
		if got != b.Want {
			t.Errorf("%s:%d: %s\ngot:\n%s\nwant:\n%s", file, b.Line, b.Cmd, got, b.Want)
		}
	}
	if rewrite {
		if err := os.WriteFile(file, append(bytes.TrimRight(out.Bytes(), "\n"), '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
