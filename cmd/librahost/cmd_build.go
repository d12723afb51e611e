package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/librahost/librahost/host/build"
)

func cmdBuild(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("build", stderr)
	out := fs.String("o", "", "output file (default: <name>.wasm in the current directory)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		fmt.Fprintln(stderr, "usage: librahost build [-o out.wasm] <Go package dir | file.c ... | app.wasm>")
		return errUsage
	}
	path, err := build.Build(context.Background(), fs.Args(), build.Config{Out: *out, Stderr: stderr, Progress: stderr, CacheDir: cacheDir("build")})
	if err != nil {
		return err
	}
	if path == "" {
		return errors.New("no output")
	}
	fmt.Fprintf(stdout, "%s\n", path)
	return nil
}

// needsBuild reports whether run was given source rather than a module:
// a Go package directory or a C file.
func needsBuild(path string) bool {
	if strings.HasSuffix(path, ".c") {
		return true
	}
	fi, err := os.Stat(path)
	return err == nil && fi.IsDir()
}

// moduleFor returns the module to run for path: path itself, or the
// build of the source it names.
func moduleFor(path string, stderr io.Writer) (string, error) {
	if !needsBuild(path) {
		return path, nil
	}
	return buildForRun(path, stderr)
}

// buildForRun builds source given to run into librahost's cache.
func buildForRun(src string, stderr io.Writer) (string, error) {
	abs, err := filepath.Abs(src)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256([]byte(abs))
	dir := cacheDir("run")
	if dir == "" {
		dir = os.TempDir()
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	out := filepath.Join(dir, strings.TrimSuffix(filepath.Base(abs), ".c")+"-"+hex.EncodeToString(sum[:6])+".wasm")
	return build.Build(context.Background(), []string{src}, build.Config{Out: out, Stderr: stderr, Progress: stderr, CacheDir: cacheDir("build")})
}
