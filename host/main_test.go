package host

import (
	"fmt"
	"os"
	"testing"

	"github.com/librahost/librahost/host/build/buildtest"
	"github.com/librahost/librahost/host/lazy"
)

var testDir string

func TestMain(m *testing.M) {
	lazy.Main() // the filler of lazy restores
	code := func() int {
		d, err := os.MkdirTemp("", "librahost-host-")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer os.RemoveAll(d)
		testDir = d
		guests.Dir = d
		return m.Run()
	}()
	os.Exit(code)
}

var guests buildtest.Builder

// testGuest builds src (relative to this package) once per test run.
func testGuest(t testing.TB, src string) []byte { return guests.Guest(t, src) }
