package job

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/librahost/librahost/ckpt"
	"github.com/librahost/librahost/host/build/buildtest"
	"github.com/librahost/librahost/host/lazy"
)

// guests builds the test guests into guests.Dir, which also holds the
// wazero cache of a test run.
var guests buildtest.Builder

func TestMain(m *testing.M) {
	lazy.Main() // the filler of lazy restores
	os.Exit(guests.Main(m))
}

// testGuest builds src (relative to this package) once per test run.
func testGuest(t testing.TB, src string) []byte { return guests.Guest(t, src) }

// testStore opens a store in a directory of t's, as cfg says but for its
// path; it is closed when t ends.
func testStore(t testing.TB, cfg ckpt.Config) *ckpt.Store {
	t.Helper()
	cfg.Path = filepath.Join(t.TempDir(), "ckpt.db")
	store, err := ckpt.Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	return store
}

// testModuleFile builds src as testGuest does and writes it to a file of
// t's, for a Config's ModulePath.
func testModuleFile(t testing.TB, src string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), filepath.Base(src)+".wasm")
	if err := os.WriteFile(path, testGuest(t, src), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}
