package node

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// The hash of a tree follows names, contents and links, not times.
func TestHashTree(t *testing.T) {
	mk := func() string {
		d := t.TempDir()
		os.MkdirAll(filepath.Join(d, "sub"), 0o755)
		os.WriteFile(filepath.Join(d, "a.txt"), []byte("alpha"), 0o644)
		os.WriteFile(filepath.Join(d, "sub", "b.txt"), []byte("beta"), 0o644)
		os.Symlink("a.txt", filepath.Join(d, "l"))
		return d
	}
	hash := func(d string) string {
		t.Helper()
		h, err := hashTree(d)
		if err != nil {
			t.Fatal(err)
		}
		return h
	}
	a, b := mk(), mk()
	ha := hash(a)
	old := time.Now().Add(-time.Hour)
	os.Chtimes(filepath.Join(b, "a.txt"), old, old)
	if hb := hash(b); hb != ha {
		t.Fatalf("two copies hash %s and %s", ha, hb)
	}
	for name, change := range map[string]func(d string){
		"contents": func(d string) { os.WriteFile(filepath.Join(d, "sub", "b.txt"), []byte("betA"), 0o644) },
		"name":     func(d string) { os.Rename(filepath.Join(d, "a.txt"), filepath.Join(d, "c.txt")) },
		"link":     func(d string) { os.Remove(filepath.Join(d, "l")); os.Symlink("sub", filepath.Join(d, "l")) },
		"new file": func(d string) { os.WriteFile(filepath.Join(d, "sub", "x"), nil, 0o644) },
	} {
		d := mk()
		change(d)
		if hash(d) == ha {
			t.Errorf("a change of %s keeps the hash", name)
		}
	}
	if _, err := hashTree(filepath.Join(a, "missing")); err == nil {
		t.Error("a missing directory hashed")
	}
}

// A read-only input that differs between hosts is refused in one line
// naming both; read-write mounts are not compared.
func TestCheckInputs(t *testing.T) {
	ms := []mountMsg{{Host: "out", Guest: "/out"}, {Host: "in", Guest: "/in", ReadOnly: true}}
	ids := []string{"a", "b", "c"}
	if err := checkInputs(ms, ids, [][]string{{"", "h1"}, {"", "h1"}, {"", "h1"}}); err != nil {
		t.Fatal(err)
	}
	err := checkInputs(ms, ids, [][]string{{"", "h1"}, {"", "h1"}, {"", "h2"}})
	if err == nil || err.Error() != "--dir in:/in:ro: the read-only input differs between host a and host c (sha256 h1… and h2…): make its contents the same on every host of the job" {
		t.Fatalf("got %v", err)
	}
	if err := checkInputs(ms, ids, [][]string{{"", "h1"}, {"h1"}, {"", "h1"}}); err == nil {
		t.Fatal("a host that hashed one mount of two was taken")
	}
}
