package web

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/librahost/librahost/host/build/buildtest"
	"github.com/librahost/librahost/transport"
)

var (
	testDir string
	guests  buildtest.Builder
)

func TestMain(m *testing.M) {
	code := func() int {
		d, err := os.MkdirTemp("", "librahost-web-")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer os.RemoveAll(d)
		testDir, guests.Dir = d, d
		if err := transport.InitCluster(filepath.Join(d, "cluster"), []string{"a", "b"}); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		return m.Run()
	}()
	os.Exit(code)
}
