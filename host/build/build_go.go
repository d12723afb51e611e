package build

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
)

// glueFile is the file added to a main package that does not import the
// SDK, through go build -overlay.
const glueFile = "zz_librahost_glue.go"

const glueSource = "package main\n\nimport _ \"" + sdkImportPath + "\"\n"

// buildGo builds a Go main package as a wasip1 reactor with the SDK.
func buildGo(ctx context.Context, dir, work string, cfg *Config) ([]byte, Info, error) {
	goTool, err := findGo()
	if err != nil {
		return nil, Info{}, err
	}
	pkgDir, err := filepath.Abs(dir)
	if err != nil {
		return nil, Info{}, fmt.Errorf("build: %v", err)
	}
	goVersion, err := output(ctx, "go env GOVERSION", pkgDir, os.Environ(), goTool, "env", "GOVERSION")
	if err != nil {
		return nil, Info{}, err
	}
	workVersion, err := goWorkVersion(goVersion)
	if err != nil {
		return nil, Info{}, err
	}
	if !cfg.Plain {
		if err := CheckGoVerified(goVersion); err != nil {
			return nil, Info{}, err
		}
	}

	modRoot := findModRoot(pkgDir)
	if modRoot == "" {
		if pkgDir, err = tempModule(pkgDir, work); err != nil {
			return nil, Info{}, err
		}
		modRoot = pkgDir
	}
	sdk, err := writeSDK(cfg.CacheDir)
	if err != nil {
		return nil, Info{}, fmt.Errorf("build: writing the guest SDK: %v", err)
	}
	goWork := filepath.Join(work, "go.work")
	text := fmt.Sprintf("go %s\n\nuse (\n\t%s\n\t%s\n)\n", workVersion, strconv.Quote(modRoot), strconv.Quote(sdk))
	if err := os.WriteFile(goWork, []byte(text), 0o644); err != nil {
		return nil, Info{}, fmt.Errorf("build: %v", err)
	}
	env := setEnv(os.Environ(), "GOOS=wasip1", "GOARCH=wasm", "GOWORK="+goWork)

	list, err := output(ctx, "go list", pkgDir, env, goTool, "list", "-f", "{{.Name}}|{{.ImportPath}}|{{join .Imports \" \"}}", ".")
	if err != nil {
		return nil, Info{}, err
	}
	fields := strings.SplitN(list, "|", 3)
	if len(fields) != 3 {
		return nil, Info{}, fmt.Errorf("build: go list printed %q", list)
	}
	if fields[0] != "main" {
		return nil, Info{}, fmt.Errorf("build: %s is package %s, not a main package", dir, fields[0])
	}
	args := []string{"build", "-buildmode=c-shared", "-o", filepath.Join(work, "go.wasm")}
	if cfg.Plain {
		args = []string{"build", "-o", filepath.Join(work, "go.wasm")}
	} else if !contains(strings.Fields(fields[2]), sdkImportPath) {
		overlay, err := writeGlue(pkgDir, work)
		if err != nil {
			return nil, Info{}, err
		}
		args = append(args, "-overlay", overlay)
	}
	args = append(args, cfg.GoFlags...)
	args = append(args, ".")
	if err := run(ctx, "go build", cfg, pkgDir, env, goTool, args...); err != nil {
		return nil, Info{}, err
	}
	b, err := os.ReadFile(filepath.Join(work, "go.wasm"))
	if err != nil {
		return nil, Info{}, fmt.Errorf("build: %v", err)
	}
	if cfg.Plain {
		return b, Info{}, requireExports(b, "go build", "_start")
	}
	if err := requireExports(b, "go build", "_initialize", "libra_run"); err != nil {
		return nil, Info{}, err
	}
	return b, Info{Kind: KindGo, Go: goVersion, Source: fields[1]}, nil
}

var goVersionRE = regexp.MustCompile(`^go1\.(\d+)(\.\d+)?`)

// goWorkVersion checks that the Go toolchain is recent enough and returns
// the version for the go.work go line.
func goWorkVersion(goVersion string) (string, error) {
	m := goVersionRE.FindStringSubmatch(goVersion)
	if m == nil {
		return "1.26", nil // a development toolchain
	}
	if minor, _ := strconv.Atoi(m[1]); minor < 26 {
		return "", fmt.Errorf("build: %s is too old: %s", goVersion, goToolHint)
	}
	return strings.TrimPrefix(m[0], "go"), nil
}

// findModRoot returns the nearest directory at or above dir with a go.mod.
func findModRoot(dir string) string {
	for {
		if fi, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil && !fi.IsDir() {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return ""
		}
		dir = parent
	}
}

var moduleNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)

// tempModule copies the package's .go files (not its tests) into a module
// of their own under work, for a package with no go.mod above it.
func tempModule(pkgDir, work string) (string, error) {
	name := filepath.Base(pkgDir)
	if !moduleNameRE.MatchString(name) {
		name = "guest"
	}
	dst := filepath.Join(work, "module", name)
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return "", fmt.Errorf("build: %v", err)
	}
	entries, err := os.ReadDir(pkgDir)
	if err != nil {
		return "", fmt.Errorf("build: %v", err)
	}
	n := 0
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".go") || strings.HasSuffix(e.Name(), "_test.go") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(pkgDir, e.Name()))
		if err == nil {
			err = os.WriteFile(filepath.Join(dst, e.Name()), b, 0o644)
		}
		if err != nil {
			return "", fmt.Errorf("build: %v", err)
		}
		n++
	}
	if n == 0 {
		return "", fmt.Errorf("build: no Go files in %s", pkgDir)
	}
	gomod := "module " + name + "\n\ngo 1.26\n"
	if err := os.WriteFile(filepath.Join(dst, "go.mod"), []byte(gomod), 0o644); err != nil {
		return "", fmt.Errorf("build: %v", err)
	}
	return dst, nil
}

// writeGlue writes the glue file and the overlay that adds it to pkgDir.
func writeGlue(pkgDir, work string) (string, error) {
	glue := filepath.Join(work, glueFile)
	overlay := filepath.Join(work, "overlay.json")
	data, _ := json.Marshal(map[string]map[string]string{
		"Replace": {filepath.Join(pkgDir, glueFile): glue},
	})
	if err := os.WriteFile(glue, []byte(glueSource), 0o644); err != nil {
		return "", fmt.Errorf("build: %v", err)
	}
	if err := os.WriteFile(overlay, data, 0o644); err != nil {
		return "", fmt.Errorf("build: %v", err)
	}
	return overlay, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
