package wasi

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func restoreConfig(dir string) Config {
	return Config{Mounts: []Mount{{HostPath: dir, GuestPath: "/data"}}}
}

// readdirNames reads directory fd from cookie with a buffer of bufLen and
// returns the whole entries it got and the cookie after the last.
func (h *harness) readdirNames(fd uint32, cookie uint64, bufLen uint32) ([]string, uint64) {
	h.t.Helper()
	if e := h.call("fd_readdir", uint64(fd), scratch, uint64(bufLen), cookie, resAt); e != 0 {
		h.t.Fatalf("fd_readdir: %d", e)
	}
	buf := h.read(scratch, h.u32(resAt))
	var names []string
	for len(buf) >= direntSize {
		n := le.Uint32(buf[16:])
		if uint32(len(buf)) < direntSize+n {
			break
		}
		names = append(names, string(buf[direntSize:direntSize+n]))
		cookie = le.Uint64(buf)
		buf = buf[direntSize+n:]
	}
	return names, cookie
}

// TestRestoreInNewProcess checkpoints open files in this process and
// continues them in a child process.
func TestRestoreInNewProcess(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "f"), []byte("hello"), 0o644)
	os.Mkdir(filepath.Join(dir, "d"), 0o755)
	for _, n := range []string{"x1", "x2", "x3", "x4"} {
		os.WriteFile(filepath.Join(dir, "d", n), nil, 0o644)
	}
	h := newHarness(t, restoreConfig(dir))
	fd, e := h.open(3, "f", 0, 0, rightsRW)
	if e != 0 {
		t.Fatal(e)
	}
	h.write(resAt+64, le.AppendUint32(le.AppendUint32(nil, scratch), 2))
	if e := h.call("fd_read", uint64(fd), resAt+64, 1, resAt+80); e != 0 || h.u32(resAt+80) != 2 {
		t.Fatalf("fd_read: %d", e)
	}
	dfd, e := h.open(3, "d", 0, oflagDirectory, rightsR)
	if e != 0 {
		t.Fatal(e)
	}
	names, cookie := h.readdirNames(dfd, 0, direntSize*3+5) // ".", "..", "x1"
	if strings.Join(names, ",") != ".,..,x1" {
		t.Fatalf("first readdir: %v", names)
	}
	// Rename the open file: the restore must find it at its new path.
	if e := h.twoPathCall("path_rename", 3, "f", 3, "g"); e != 0 {
		t.Fatal(e)
	}
	snap, err := h.s.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	snapFile := filepath.Join(t.TempDir(), "snap")
	os.WriteFile(snapFile, snap, 0o644)

	cmd := exec.Command(os.Args[0], "-test.run=^TestRestoreChild$", "-test.v")
	cmd.Env = append(os.Environ(), "WASI_RESTORE_CHILD="+strings.Join([]string{
		dir, snapFile, fmt.Sprint(fd), fmt.Sprint(dfd), fmt.Sprint(cookie)}, "|"))
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "child: read \"llo\" rest x2,x3,x4") {
		t.Fatalf("child output:\n%s", out)
	}
	b, _ := os.ReadFile(filepath.Join(dir, "g"))
	if string(b) != "helloXY" {
		t.Fatalf("file after child: %q", b)
	}
}

func TestRestoreChild(t *testing.T) {
	env := os.Getenv("WASI_RESTORE_CHILD")
	if env == "" {
		t.Skip("run by TestRestoreInNewProcess")
	}
	var dir, snapFile string
	var fd, dfd uint32
	var cookie uint64
	parts := strings.Split(env, "|")
	dir, snapFile = parts[0], parts[1]
	fmt.Sscan(parts[2], &fd)
	fmt.Sscan(parts[3], &dfd)
	fmt.Sscan(parts[4], &cookie)
	snap, err := os.ReadFile(snapFile)
	if err != nil {
		t.Fatal(err)
	}
	h := newHarness(t, restoreConfig(dir))
	if err := h.s.Restore(snap); err != nil {
		t.Fatal(err)
	}
	h.write(resAt+64, le.AppendUint32(le.AppendUint32(nil, scratch), 16))
	if e := h.call("fd_read", uint64(fd), resAt+64, 1, resAt+80); e != 0 {
		t.Fatalf("fd_read: %d", e)
	}
	got := string(h.read(scratch, h.u32(resAt+80)))
	h.write(scratch, []byte("XY"))
	h.write(resAt+64, le.AppendUint32(le.AppendUint32(nil, scratch), 2))
	if e := h.call("fd_write", uint64(fd), resAt+64, 1, resAt+80); e != 0 {
		t.Fatalf("fd_write: %d", e)
	}
	names, _ := h.readdirNames(dfd, cookie, 1024)
	fmt.Printf("child: read %q rest %s\n", got, strings.Join(names, ","))
}
