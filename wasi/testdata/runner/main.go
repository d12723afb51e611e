// Command runner runs a wasip1 command module with the wasi package, mounting
// the host root at the guest root: a go test -exec runner for conformance.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/librahost/librahost/wasi"
	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/sys"
)

func main() {
	ctx := context.Background()
	b, err := os.ReadFile(os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	cwd, _ := os.Getwd()
	env := []string{"PWD=" + cwd}
	for _, k := range []string{"HOME", "TMPDIR", "GOROOT", "PATH"} {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	s, err := wasi.New(wasi.Config{Args: append([]string{filepath.Base(os.Args[1])}, os.Args[2:]...), Env: env,
		Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr,
		Mounts: []wasi.Mount{{HostPath: "/", GuestPath: "/"}}})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	cd, _ := os.UserCacheDir()
	cache, _ := wazero.NewCompilationCacheWithDir(filepath.Join(cd, "wrun"))
	r := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfig().WithCompilationCache(cache))
	if err := s.Instantiate(ctx, r); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	_, err = r.InstantiateWithConfig(ctx, b, wazero.NewModuleConfig())
	var ee *sys.ExitError
	if errors.As(err, &ee) {
		os.Exit(int(ee.ExitCode()))
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
