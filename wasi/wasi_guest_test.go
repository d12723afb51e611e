package wasi

import (
	"strings"
	"testing"
)

func TestGuestBasic(t *testing.T) {
	res := runGuest(t, Config{
		Args:  []string{"guest", "basic", "x y"},
		Env:   []string{"GREETING=hello"},
		Stdin: strings.NewReader("some input"),
	})
	if res.err != nil {
		t.Fatalf("run: %v\nstdout:\n%s\nstderr:\n%s", res.err, res.stdout, res.stderr)
	}
	if res.exit != 3 {
		t.Errorf("exit code %d, want 3", res.exit)
	}
	for _, want := range []string{
		"args: guest basic x y\n",
		"env: hello\n",
		"slept: true\n",
		"stdin: \"some input\" <nil>\n",
	} {
		if !strings.Contains(res.stdout, want) {
			t.Errorf("stdout lacks %q:\n%s", want, res.stdout)
		}
	}
	if strings.Contains(res.stdout, "rand: 00000000000000000000000000000000") || !strings.Contains(res.stdout, "rand: ") {
		t.Errorf("bad rand line:\n%s", res.stdout)
	}
	if res.stderr != "to stderr\n" {
		t.Errorf("stderr %q", res.stderr)
	}
}
