package build

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// watchTerm is a terminal that keeps what is drawn on it and says when
// a text first appears.
type watchTerm struct {
	mu   sync.Mutex
	buf  strings.Builder
	want string
	seen chan struct{}
}

func (w *watchTerm) IsTerminal() bool { return true }

func (w *watchTerm) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	if w.want != "" && strings.Contains(w.buf.String(), w.want) {
		close(w.seen)
		w.want = ""
	}
	return len(p), nil
}

func (w *watchTerm) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

// TestBuildSpinner: on a terminal, a toolchain step that takes longer
// than a second (wasm-opt here, held until the spinner shows) gets a
// spinner labelled with the step, erased when the step ends; the module
// is built as without one.
func TestBuildSpinner(t *testing.T) {
	getGuest(t, "wasm-c") // its input, plain/c.wasm, exists
	real, err := lookPath("wasm-opt")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	release := filepath.Join(dir, "release")
	if err := syscall.Mkfifo(release, 0o600); err != nil {
		t.Fatal(err)
	}
	held := filepath.Join(dir, "wasm-opt")
	if err := os.WriteFile(held, []byte("#!/bin/sh\nread go < "+release+"\nexec "+real+` "$@"`+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	defer func(lp func(string) (string, error)) { lookPath = lp }(lookPath)
	lookPath = func(name string) (string, error) {
		if name == "wasm-opt" {
			return held, nil
		}
		return real, nil
	}

	term := &watchTerm{want: "wasm-opt --asyncify", seen: make(chan struct{})}
	out := filepath.Join(dir, "c.wasm")
	built := make(chan error, 1)
	go func() {
		_, err := Build(context.Background(), []string{filepath.Join(testDir, "plain/c.wasm")},
			Config{Out: out, Progress: term, CacheDir: filepath.Join(testDir, "cache")})
		built <- err
	}()
	select {
	case <-term.seen:
	case err := <-built:
		t.Fatalf("the build ended (%v) with no spinner drawn: %q", err, term.String())
	case <-time.After(2 * time.Minute): // only ends a hang
		t.Fatalf("no spinner after 2 min: %q", term.String())
	}
	f, err := os.OpenFile(release, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("go\n")
	f.Close()
	if err := <-built; err != nil {
		t.Fatal(err)
	}
	s := term.String()
	lines := strings.Split(s, "\r")
	if len(lines) < 3 || lines[len(lines)-1] != "" || strings.TrimSpace(lines[len(lines)-2]) != "" {
		t.Errorf("the spinner was not erased at the end: %q", s)
	}
	if _, err := os.Stat(out); err != nil {
		t.Error(err)
	}
}
