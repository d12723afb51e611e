package wasi

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// escapeFixture builds mounts /data and /data/inner/m (nested) and /ro
// with symbolic links of every kind pointing inside and outside them. It
// returns the inodes inside the mounts and those outside.
func escapeFixture(tb testing.TB) (*System, map[uint64]bool, map[uint64]bool) {
	tb.Helper()
	top := tb.TempDir()
	data, ro, nested := filepath.Join(top, "data"), filepath.Join(top, "ro"), filepath.Join(top, "nested")
	for _, d := range []string{data, ro, nested, filepath.Join(data, "a", "b"), filepath.Join(data, "inner", "m"), filepath.Join(top, "outdir")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			tb.Fatal(err)
		}
	}
	files := map[string]string{
		filepath.Join(top, "secret"):           "outside",
		filepath.Join(top, "outdir", "secret"): "outside",
		filepath.Join(data, "f"):               "in",
		filepath.Join(data, "a", "b", "g"):     "in",
		filepath.Join(ro, "r"):                 "in",
		filepath.Join(nested, "n"):             "in",
	}
	for p, c := range files {
		if err := os.WriteFile(p, []byte(c), 0o644); err != nil {
			tb.Fatal(err)
		}
	}
	links := map[string]string{
		"up":       "..",
		"upup":     "../..",
		"secret1":  "../secret",
		"secret2":  "a/b/../../../secret",
		"secret3":  filepath.Join(top, "secret"),
		"outdir":   filepath.Join(top, "outdir"),
		"outrel":   "../outdir",
		"root":     "/",
		"rootdd":   "/..",
		"rootsec":  "/../secret",
		"tonested": "/data/inner/m/n",
		"toro":     "/ro",
		"a/b/back": "../../up",
		"a/b/abs":  "/data/a",
		"a/self":   ".",
		"loop1":    "loop2",
		"loop2":    "loop1",
	}
	for l, target := range links {
		if err := os.Symlink(target, filepath.Join(data, l)); err != nil {
			tb.Fatal(err)
		}
	}
	s, err := New(Config{Mounts: []Mount{
		{HostPath: data, GuestPath: "/data"},
		{HostPath: nested, GuestPath: "/data/inner/m"},
		{HostPath: ro, GuestPath: "/ro", ReadOnly: true},
	}})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { s.Close() })
	inside, outside := map[uint64]bool{}, map[uint64]bool{}
	walk := func(dir string, into map[uint64]bool) {
		filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if fi, err := os.Lstat(p); err == nil {
				into[fi.Sys().(*syscall.Stat_t).Ino] = true
			}
			return nil
		})
	}
	for _, d := range []string{data, nested, ro} {
		walk(d, inside)
	}
	walk(filepath.Join(top, "outdir"), outside)
	fi, _ := os.Lstat(filepath.Join(top, "secret"))
	outside[fi.Sys().(*syscall.Stat_t).Ino] = true
	fi, _ = os.Lstat(top)
	outside[fi.Sys().(*syscall.Stat_t).Ino] = true
	return s, inside, outside
}

// checkContained resolves p and opens the result as path_open would; what
// it reaches must be inside a mount.
func checkContained(t *testing.T, s *System, inside, outside map[uint64]bool, dirfd uint32, p string, follow bool) {
	dir, en := s.dirEntry(dirfd)
	if en != errnoSuccess {
		t.Fatalf("dirfd %d: %d", dirfd, en)
	}
	loc, en := s.resolve(dir, p, follow)
	if en != errnoSuccess {
		return
	}
	if !validRel(loc.rel) || loc.m != s.mounts[loc.mi] {
		t.Fatalf("resolve(%q) = mount %d rel %q", p, loc.mi, loc.rel)
	}
	if loc.fi != nil {
		ino := loc.fi.Sys().(*syscall.Stat_t).Ino
		if outside[ino] || !inside[ino] {
			t.Fatalf("resolve(%q) reached inode %d outside the mounts", p, ino)
		}
	}
	f, err := loc.m.root.Open(loc.rel)
	if err != nil {
		return
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return
	}
	if ino := fi.Sys().(*syscall.Stat_t).Ino; outside[ino] || !inside[ino] {
		t.Fatalf("open(%q) reached inode %d outside the mounts", p, ino)
	}
}

func TestResolveContained(t *testing.T) {
	s, inside, outside := escapeFixture(t)
	for _, p := range resolveSeeds {
		for _, follow := range []bool{false, true} {
			checkContained(t, s, inside, outside, 3, p, follow)
		}
	}
}

func TestResolve(t *testing.T) {
	s, _, _ := escapeFixture(t)
	dir, _ := s.dirEntry(3)
	for _, tc := range []struct {
		path   string
		follow bool
		mount  int
		rel    string
		want   errno
	}{
		{"f", false, 0, "f", 0},
		{"a/b/g", false, 0, "a/b/g", 0},
		{"up", true, 0, ".", errnoPerm}, // "/" has no mount
		{"up/data/f", true, 0, "f", 0},
		{"up", false, 0, "up", 0},
		{"secret1", true, 0, "", errnoNoent},
		{"secret2", true, 0, "", errnoNoent},
		{"secret3", true, 0, "", errnoNoent},
		{"outdir/secret", false, 0, "", errnoNoent},
		{"outrel/secret", false, 0, "", errnoNoent},
		{"root/ro/r", false, 2, "r", 0},
		{"rootdd/data/f", false, 0, "f", 0},
		{"rootsec", true, 0, "", errnoNoent},
		{"tonested", true, 1, "n", 0},
		{"inner/m/n", false, 1, "n", 0},
		{"inner/m/..", false, 0, "inner", 0},
		{"toro/r", false, 2, "r", 0},
		{"a/b/back/data/f", false, 0, "f", 0},
		{"a/b/abs/b/g", false, 0, "a/b/g", 0},
		{"a/self/self/b", false, 0, "a/b", 0},
		{"loop1", true, 0, "", errnoLoop},
		{"loop1", false, 0, "loop1", 0},
		{"f/", false, 0, "", errnoNotdir},
		{"a/", false, 0, "a", 0},
		{"../data/f", false, 0, "", errnoPerm},
		{"/data/f", false, 0, "", errnoPerm},
		{"", false, 0, "", errnoNoent},
		{"a\x00b", false, 0, "", errnoInval},
	} {
		loc, en := s.resolve(dir, tc.path, tc.follow)
		if en != tc.want {
			t.Errorf("resolve(%q, %v): errno %d, want %d", tc.path, tc.follow, en, tc.want)
			continue
		}
		if en == 0 && (loc.mi != tc.mount || loc.rel != tc.rel) {
			t.Errorf("resolve(%q, %v) = %d %q, want %d %q", tc.path, tc.follow, loc.mi, loc.rel, tc.mount, tc.rel)
		}
	}
}

var resolveSeeds = []string{
	"f", "..", "../secret", "up/secret", "upup/secret", "secret1", "secret2", "secret3",
	"outdir/secret", "outrel/secret", "root/secret", "rootdd/secret", "rootsec", "tonested",
	"a/b/back/secret", "a/b/back/../secret", "a/self/../../secret", "inner/m/../../../secret",
	"a/../../secret", "./././../secret", "up/up/up/secret", "loop1", "toro/../secret",
	"a/b/abs/../../secret", "up/data/../secret", strings.Repeat("a/self/", 50) + "b",
}

func FuzzResolvePath(f *testing.F) {
	for _, p := range resolveSeeds {
		f.Add(p, true, false)
		f.Add(p, false, true)
	}
	s, inside, outside := escapeFixture(f)
	// A second directory fd, below the mount root.
	sub, err := s.mounts[0].root.Open("a")
	if err != nil {
		f.Fatal(err)
	}
	subfd, _ := s.fds.insert(&fdEntry{kind: kindDir, mount: 0, rel: "a", file: sub, read: true})
	f.Fuzz(func(t *testing.T, p string, follow, fromSub bool) {
		dirfd := uint32(3)
		if fromSub {
			dirfd = subfd
		}
		checkContained(t, s, inside, outside, dirfd, p, follow)
	})
}
