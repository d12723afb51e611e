package wasi

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestGuestFiles(t *testing.T) {
	data, ro := t.TempDir(), t.TempDir()
	os.WriteFile(filepath.Join(ro, "hello.txt"), []byte("read only"), 0o644)
	if err := os.Symlink("/data/sub/b.txt", filepath.Join(data, "abslink")); err != nil {
		t.Fatal(err)
	}
	res := runGuest(t, Config{
		Args:   []string{"guest", "files", "/data"},
		Mounts: []Mount{{HostPath: data, GuestPath: "/data"}, {HostPath: ro, GuestPath: "/ro", ReadOnly: true}},
	})
	if res.err != nil || res.exit != 0 {
		t.Fatalf("run: %v exit %d\nstdout:\n%s\nstderr:\n%s", res.err, res.exit, res.stdout, res.stderr)
	}
	want := `write: ok
open append: ok
append: ok
read: "hello world" <nil>
open rw: ok
seek: 6 <nil>
reread: "hello WORLD"
truncate: ok
stat: size=5 dir=false <nil>
mkdir: ok
mkdirall: ok
mkdir exists: error: mkdir /data/sub: File exists
rename: ok
stat old: notexist=true
symlink: ok
symlink abs: error: symlink /data/sub/b.txt /data/abslink2: Operation not permitted
readlink: "b.txt" <nil>
read via link: "hello" <nil>
read via abs link: "hello" <nil>
lstat link: symlink=true <nil>
escape link: ok
read escape: failed=true
read dotdot: failed=true
readdir: 31 f00,f01,f02 <nil>
readdir sub: b.txt:---------- link:L--------- x:d--------- <nil>
chtimes: ok
mtime: true <nil>
link: ok
remove file: ok
remove nonempty: error: remove /data/sub/x: Directory not empty
removeall: ok
gone: true
write ro: error: open /ro/new.txt: Read-only file system
read ro: "read only" <nil>
`
	if res.stdout != want {
		t.Errorf("stdout differs:\n%s", lineDiff(want, res.stdout))
	}
	if _, err := os.Stat(filepath.Join(ro, "new.txt")); err == nil {
		t.Error("read-only mount written")
	}
}

func lineDiff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	var b strings.Builder
	for i := 0; i < max(len(w), len(g)); i++ {
		var wl, gl string
		if i < len(w) {
			wl = w[i]
		}
		if i < len(g) {
			gl = g[i]
		}
		if wl != gl {
			b.WriteString("- " + wl + "\n+ " + gl + "\n")
		}
	}
	return b.String()
}
