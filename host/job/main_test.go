package job

import (
	"os"
	"testing"

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
