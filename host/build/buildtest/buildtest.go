// Package buildtest builds guests for tests: each source once per test
// binary, into a directory the caller owns.
package buildtest

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/librahost/librahost/host/build"
)

// Builder builds guests into Dir, remembering what it built.
type Builder struct {
	Dir string

	mu    sync.Mutex
	built map[string][]byte
}

// Guest builds src (a Go package dir, .c file or module, relative to the
// test's package) once and returns the module.
func (b *Builder) Guest(t testing.TB, src string) []byte {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	if m, ok := b.built[src]; ok {
		return m
	}
	if b.built == nil {
		b.built = map[string][]byte{}
	}
	out := filepath.Join(b.Dir, fmt.Sprintf("g%d.wasm", len(b.built)))
	if _, err := build.Build(context.Background(), []string{src}, build.Config{Out: out, CacheDir: filepath.Join(b.Dir, "cache")}); err != nil {
		t.Fatalf("build %s: %v", src, err)
	}
	m, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	b.built[src] = m
	return m
}

// Main runs a test binary's tests (for TestMain) with Dir a new
// temporary directory, removed after them, and returns the exit code.
func (b *Builder) Main(m *testing.M) int {
	d, err := os.MkdirTemp("", "librahost-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(d)
	b.Dir = d
	return m.Run()
}
