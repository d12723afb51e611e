package host

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/librahost/librahost/host/build"
)

var testDir string

func TestMain(m *testing.M) {
	code := func() int {
		d, err := os.MkdirTemp("", "librahost-host-")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer os.RemoveAll(d)
		testDir = d
		return m.Run()
	}()
	os.Exit(code)
}

var (
	builtMu sync.Mutex
	built   = map[string][]byte{}
)

// testGuest builds src (relative to host/) once per test run.
func testGuest(t testing.TB, src string) []byte {
	t.Helper()
	builtMu.Lock()
	defer builtMu.Unlock()
	if b, ok := built[src]; ok {
		return b
	}
	out := filepath.Join(testDir, fmt.Sprintf("g%d.wasm", len(built)))
	if _, err := build.Build(context.Background(), []string{src}, build.Config{Out: out, CacheDir: filepath.Join(testDir, "cache")}); err != nil {
		t.Fatalf("build %s: %v", src, err)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	built[src] = b
	return b
}
