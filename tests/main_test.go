package tests

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"testing"
)

var (
	binDir    string // holds the librahost binary and the built guests
	librahost string
)

// testParallel is how many tests that call t.Parallel run at once when
// go test is given no -parallel. Go's default, GOMAXPROCS, is too few
// here: these tests mostly wait on their processes (checkpoint intervals,
// failure timeouts, jobs held at their end), and a 2-core machine runs
// several of them in the time of one.
const testParallel = 6

func TestMain(m *testing.M) {
	flag.Parse()
	given := false
	flag.Visit(func(f *flag.Flag) { given = given || f.Name == "test.parallel" })
	if !given {
		flag.Set("test.parallel", strconv.Itoa(testParallel))
	}
	code := func() int {
		dir, err := os.MkdirTemp("", "librahost-tests-")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer os.RemoveAll(dir)
		binDir = dir
		librahost = filepath.Join(dir, "librahost")
		cmd := exec.Command("go", "build", "-o", librahost, "../cmd/librahost")
		cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
		if err := cmd.Run(); err != nil {
			fmt.Fprintln(os.Stderr, "build librahost:", err)
			return 1
		}
		return m.Run()
	}()
	os.Exit(code)
}

// guestBuild is one guest's build, done once per test run.
type guestBuild struct {
	once sync.Once
	path string
	err  string // the build's output if it failed
}

var (
	guestMu sync.Mutex
	guests  = map[string]*guestBuild{}
)

// guest builds src (a Go package dir, a .c file or a .wasm module,
// relative to the repository root) once per test run and returns the
// module's path. Tests running in parallel build different guests at
// once, and wait for one another's build of the same guest.
func guest(t testing.TB, src string) string {
	t.Helper()
	guestMu.Lock()
	g := guests[src]
	if g == nil {
		g = &guestBuild{path: filepath.Join(binDir, fmt.Sprintf("guest%d.wasm", len(guests)))}
		guests[src] = g
	}
	guestMu.Unlock()
	g.once.Do(func() {
		_, file, _, _ := runtime.Caller(0)
		root := filepath.Dir(filepath.Dir(file))
		cmd := exec.Command(librahost, "build", "-o", g.path, filepath.Join(root, src))
		if b, err := cmd.CombinedOutput(); err != nil {
			if len(b) == 0 {
				b = []byte(err.Error())
			}
			g.err = string(bytes.TrimSpace(b))
		}
	})
	if g.err != "" {
		// One line for a missing toolchain, the compiler's lines for a
		// guest that does not compile.
		t.Fatalf("building %s: %s", src, g.err)
	}
	return g.path
}
