package tests

import (
	"os"
	"testing"
)

// A C guest uses wasi-libc's file calls under librahost's WASI rights:
// ordinary use works, a call without its right fails (wasi-libc reports
// ENOTCAPABLE from fd_read and fd_write as EBADF), an absolute symbolic
// link is refused, sockets calls say EBADF or ENOTSOCK and fd_renumber
// needs an open target.
func TestWasiLibcRights(t *testing.T) {
	t.Parallel()
	wasm := guest(t, "tests/testdata/wasirights.c")
	data := t.TempDir()
	stdout, stderr, code := lh(t, "run", "--dir", data+":/data", wasm, "--", "/data")
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	want := `fopen w: ok
fclose: ok
fread: hello world
write read-only fd: Bad file descriptor
ftruncate read-only fd: Capabilities insufficient
pwrite: ok
ftruncate: ok
lseek: ok
drop fd_read: ok
read after dropping fd_read: Bad file descriptor
write after dropping fd_read: ok
take fd_read back: Capabilities insufficient
open O_TRUNC: ok
write: ok
stat: ok
size: 3
mkdir: ok
rename: ok
symlink: ok
symlink absolute: Operation not permitted
opendir: ok
entries: 4
drop inherited fd_write: ok
openat for writing: ok
write below it: Bad file descriptor
openat for reading: ok
read: new
shutdown file: Not a socket
shutdown bad fd: Bad file descriptor
renumber onto open fd: ok
read renumbered: new
renumber onto closed fd: Bad file descriptor
unlink: ok
unlink: ok
rmdir: ok
`
	if stdout != want {
		t.Fatalf("stdout:\n%s\nwant:\n%s", stdout, want)
	}
	if ents, err := os.ReadDir(data); err != nil || len(ents) != 0 {
		t.Fatalf("mount after the run: %v %v", ents, err)
	}
}
