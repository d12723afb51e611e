package build

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestCheckGoVerified(t *testing.T) {
	for _, tc := range []struct {
		version string
		ok      bool
	}{
		{"go1.26.0", true},
		{"go1.26.8", true},
		{"go1.26rc2", true},
		{"go1.26.8 X:nodwarf5", true},
		{"go1.27.0", false},
		{"go1.2", false},
		{"go1.260", false},
		{"go1.25.5", false},
		{"devel go1.27-0a1b2c3 Mon Jan 5 2027", false},
		{"", false},
	} {
		err := CheckGoVerified(tc.version)
		if (err == nil) != tc.ok || err != nil && !errors.Is(err, ErrGoNotVerified) {
			t.Errorf("%q: %v, want ok %v", tc.version, err, tc.ok)
		}
	}
}

// TestUnverifiedGoRefused: librahost build refuses, in one line and before
// building anything, a Go toolchain whose runtime layout native capture was
// not verified against.
func TestUnverifiedGoRefused(t *testing.T) {
	realGo, err := exec.LookPath("go")
	if err != nil {
		t.Fatal(err)
	}
	// A go that says it is go1.99.1 and otherwise is the real one.
	fake := filepath.Join(t.TempDir(), "go")
	script := "#!/bin/sh\nif [ \"$1 $2\" = \"env GOVERSION\" ]; then echo go1.99.1; exit 0; fi\nexec " + realGo + " \"$@\"\n"
	if err := os.WriteFile(fake, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	defer func(lp func(string) (string, error)) { lookPath = lp }(lookPath)
	lookPath = func(name string) (string, error) {
		if name == "go" {
			return fake, nil
		}
		return exec.LookPath(name)
	}
	out := filepath.Join(t.TempDir(), "x.wasm")
	_, err = Build(context.Background(), []string{filepath.Join(testDir, "plain")}, Config{Out: out, CacheDir: t.TempDir()})
	want := "build: Go go1.99 is not verified for native capture; supported: go1.26 (use one, e.g. GOTOOLCHAIN=go1.26.0)"
	if err == nil || err.Error() != want || !errors.Is(err, ErrGoNotVerified) {
		t.Fatalf("error %v, want %q", err, want)
	}
	if _, err := os.Stat(out); err == nil {
		t.Error("a refused build wrote its output")
	}
	if strings.Contains(err.Error(), "\n") {
		t.Error("error is not one line")
	}
}
