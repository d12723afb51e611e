package wasi

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// iov places one iovec for buf at at, pointing at data, and returns at.
func (h *harness) iov(at, data, n uint32) uint64 {
	h.write(at, le.AppendUint32(le.AppendUint32(nil, data), n))
	return uint64(at)
}

func TestFdErrno(t *testing.T) {
	const iovAt, dataAt = resAt + 256, scratch + 4096
	for _, tc := range []struct {
		name string
		do   func(h *harness) errno
		want errno
	}{
		{"close bad", func(h *harness) errno { return h.call("fd_close", 99) }, errnoBadf},
		{"close twice", func(h *harness) errno { h.call("fd_close", 1); return h.call("fd_close", 1) }, errnoBadf},
		{"prestat past last", func(h *harness) errno { return h.call("fd_prestat_get", 5, resAt) }, errnoBadf},
		{"prestat stdio", func(h *harness) errno { return h.call("fd_prestat_get", 0, resAt) }, errnoBadf},
		{"prestat name short", func(h *harness) errno { return h.call("fd_prestat_dir_name", 3, resAt, 2) }, errnoNametoolong},
		{"prestat bad pointer", func(h *harness) errno { return h.call("fd_prestat_get", 3, 1<<30) }, errnoFault},
		{"renumber preopen", func(h *harness) errno { return h.call("fd_renumber", 3, 1) }, 0},
		{"renumber onto preopen", func(h *harness) errno { return h.call("fd_renumber", 1, 3) }, 0},
		{"renumber onto closed fd", func(h *harness) errno { return h.call("fd_renumber", 1, 9) }, errnoBadf},
		{"renumber preopen onto closed fd", func(h *harness) errno { return h.call("fd_renumber", 3, 9) }, errnoBadf},
		{"renumber bad", func(h *harness) errno { return h.call("fd_renumber", 9, 1) }, errnoBadf},
		{"renumber", func(h *harness) errno { return h.call("fd_renumber", 1, 2) }, 0},
		{"renumber onto itself", func(h *harness) errno { return h.call("fd_renumber", 4, 4) }, 0},
		{"seek stdio", func(h *harness) errno { return h.call("fd_seek", 1, 0, whenceCur, resAt) }, errnoSpipe},
		{"seek dir", func(h *harness) errno { return h.call("fd_seek", 3, 0, whenceSet, resAt) }, errnoIsdir},
		{"seek negative", func(h *harness) errno {
			fd, _ := h.open(3, "f", 0, 0, rightsR)
			return h.call("fd_seek", uint64(fd), ^uint64(0), whenceSet, resAt)
		}, errnoInval},
		{"seek bad whence", func(h *harness) errno {
			fd, _ := h.open(3, "f", 0, 0, rightsR)
			return h.call("fd_seek", uint64(fd), 0, 3, resAt)
		}, errnoInval},
		{"read dir", func(h *harness) errno { return h.call("fd_read", 3, h.iov(iovAt, dataAt, 4), 1, resAt) }, errnoIsdir},
		{"read stdout", func(h *harness) errno { return h.call("fd_read", 1, h.iov(iovAt, dataAt, 4), 1, resAt) }, errnoBadf},
		{"write stdin", func(h *harness) errno { return h.call("fd_write", 0, h.iov(iovAt, dataAt, 4), 1, resAt) }, errnoBadf},
		{"write read-only fd", func(h *harness) errno {
			fd, _ := h.open(3, "f", 0, 0, rightsR)
			return h.call("fd_write", uint64(fd), h.iov(iovAt, dataAt, 4), 1, resAt)
		}, errnoNotcapable},
		{"write fd created without fd_write", func(h *harness) errno {
			fd, _ := h.open(3, "new", 0, oflagCreat|oflagTrunc, rightFdSeek|rightFdTell)
			return h.call("fd_write", uint64(fd), h.iov(iovAt, dataAt, 4), 1, resAt)
		}, errnoNotcapable},
		{"append fd opened without fd_write", func(h *harness) errno {
			fd, _ := h.openWith(3, "f", 0, 0, rightFdSeek, 0, fdflagAppend)
			return h.call("fd_write", uint64(fd), h.iov(iovAt, dataAt, 4), 1, resAt)
		}, errnoNotcapable},
		{"read write-only fd", func(h *harness) errno {
			fd, _ := h.open(3, "f", 0, 0, rightsW)
			return h.call("fd_read", uint64(fd), h.iov(iovAt, dataAt, 4), 1, resAt)
		}, errnoNotcapable},
		{"bad iovec", func(h *harness) errno { return h.call("fd_write", 1, h.iov(iovAt, 1<<30, 4), 1, resAt) }, errnoFault},
		{"pread stdin", func(h *harness) errno { return h.call("fd_pread", 0, h.iov(iovAt, dataAt, 4), 1, 0, resAt) }, errnoSpipe},
		{"readdir file", func(h *harness) errno {
			fd, _ := h.open(3, "f", 0, 0, rightsR)
			return h.call("fd_readdir", uint64(fd), dataAt, 128, 0, resAt)
		}, errnoNotdir},
		{"set size read-only fd", func(h *harness) errno {
			fd, _ := h.open(3, "f", 0, 0, rightsR)
			return h.call("fd_filestat_set_size", uint64(fd), 1)
		}, errnoBadf},
		{"set size dir", func(h *harness) errno { return h.call("fd_filestat_set_size", 3, 1) }, errnoIsdir},
		{"set flags sync", func(h *harness) errno { return h.call("fd_fdstat_set_flags", 1, uint64(fdflagSync)) }, errnoInval},
		{"set flags dir", func(h *harness) errno { return h.call("fd_fdstat_set_flags", 3, uint64(fdflagAppend)) }, errnoIsdir},
		{"set times both", func(h *harness) errno {
			fd, _ := h.open(3, "f", 0, 0, rightsRW)
			return h.call("fd_filestat_set_times", uint64(fd), 0, 0, fstflagAtim|fstflagAtimNow)
		}, errnoInval},
		{"set times read-only mount", func(h *harness) errno {
			fd, _ := h.open(4, "r", 0, 0, rightsR)
			return h.call("fd_filestat_set_times", uint64(fd), 0, 0, fstflagMtimNow)
		}, errnoRofs},
		{"allocate zero", func(h *harness) errno {
			fd, _ := h.open(3, "f", 0, 0, rightsRW)
			return h.call("fd_allocate", uint64(fd), 0, 0)
		}, errnoInval},
		{"advise bad", func(h *harness) errno { return h.call("fd_advise", 3, 0, 0, 9) }, errnoInval},
		{"sync bad", func(h *harness) errno { return h.call("fd_sync", 42) }, errnoBadf},
		{"proc_raise", func(h *harness) errno { return h.call("proc_raise", 9) }, errnoNosys},
		{"sched_yield", func(h *harness) errno { return h.call("sched_yield") }, 0},
		{"sock_accept bad fd", func(h *harness) errno { return h.call("sock_accept", 99, 0, resAt) }, errnoBadf},
		{"sock_accept dir", func(h *harness) errno { return h.call("sock_accept", 3, 0, resAt) }, errnoNotsock},
		{"sock_recv bad fd", func(h *harness) errno { return h.call("sock_recv", 99, 0, 0, 0, resAt, resAt+4) }, errnoBadf},
		{"sock_recv stdin", func(h *harness) errno { return h.call("sock_recv", 0, 0, 0, 0, resAt, resAt+4) }, errnoNotsock},
		{"sock_send bad fd", func(h *harness) errno { return h.call("sock_send", 99, 0, 0, 0, resAt) }, errnoBadf},
		{"sock_send stdout", func(h *harness) errno { return h.call("sock_send", 1, 0, 0, 0, resAt) }, errnoNotsock},
		{"sock_shutdown bad fd", func(h *harness) errno { return h.call("sock_shutdown", 99, 3) }, errnoBadf},
		{"sock_shutdown closed fd", func(h *harness) errno { h.call("fd_close", 1); return h.call("sock_shutdown", 1, 3) }, errnoBadf},
		{"sock_shutdown file", func(h *harness) errno {
			fd, _ := h.open(3, "f", 0, 0, rightsR)
			return h.call("sock_shutdown", uint64(fd), 3)
		}, errnoNotsock},
		{"sock_shutdown dir", func(h *harness) errno { return h.call("sock_shutdown", 3, 3) }, errnoNotsock},
		{"clock bad id", func(h *harness) errno { return h.call("clock_time_get", 9, 0, resAt) }, errnoInval},
		{"clock bad pointer", func(h *harness) errno { return h.call("clock_res_get", 0, 1<<30) }, errnoFault},
		{"random bad pointer", func(h *harness) errno { return h.call("random_get", 1<<30, 4) }, errnoFault},
		{"args bad pointer", func(h *harness) errno { return h.call("args_sizes_get", 1<<30, 0) }, errnoFault},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, _ := fixture(t)
			if e := tc.do(h); e != tc.want {
				t.Fatalf("errno %d, want %d", e, tc.want)
			}
		})
	}
}

func TestFdFileIO(t *testing.T) {
	h, top := fixture(t)
	const iovAt, dataAt = resAt + 256, scratch + 4096
	fd, e := h.open(3, "f", 0, 0, rightsRW)
	if e != 0 {
		t.Fatal(e)
	}
	rw := func(fn string, args ...uint64) uint32 {
		t.Helper()
		if e := h.call(fn, args...); e != 0 {
			t.Fatalf("%s: %d", fn, e)
		}
		return h.u32(resAt)
	}
	h.write(dataAt, []byte("HE"))
	rw("fd_write", uint64(fd), h.iov(iovAt, dataAt, 2), 1, resAt)
	rw("fd_tell", uint64(fd), resAt)
	if h.u64(resAt) != 2 {
		t.Fatalf("tell %d", h.u64(resAt))
	}
	rw("fd_pwrite", uint64(fd), h.iov(iovAt, dataAt, 2), 1, 10, resAt) // leaves a hole
	rw("fd_seek", uint64(fd), 0, whenceEnd, resAt)
	if h.u64(resAt) != 12 {
		t.Fatalf("size %d", h.u64(resAt))
	}
	if n := rw("fd_pread", uint64(fd), h.iov(iovAt, dataAt, 64), 1, 1, resAt); n != 11 {
		t.Fatalf("pread %d", n)
	}
	h.call("fd_fdstat_set_flags", uint64(fd), uint64(fdflagAppend))
	h.call("fd_seek", uint64(fd), 0, whenceSet, resAt)
	h.write(dataAt, []byte("!"))
	rw("fd_write", uint64(fd), h.iov(iovAt, dataAt, 1), 1, resAt)
	rw("fd_fdstat_get", uint64(fd), resAt)
	if b := h.read(resAt, 4); b[0] != filetypeRegularFile || le.Uint16(b[2:]) != fdflagAppend {
		t.Fatalf("fdstat %v", b)
	}
	rw("fd_allocate", uint64(fd), 0, 20)
	rw("fd_filestat_get", uint64(fd), resAt)
	if h.u64(resAt+32) != 20 {
		t.Fatalf("size after allocate %d", h.u64(resAt+32))
	}
	rw("fd_filestat_set_size", uint64(fd), 13)
	rw("fd_filestat_set_times", uint64(fd), 1e9, 2e9, fstflagAtim|fstflagMtim)
	rw("fd_filestat_get", uint64(fd), resAt)
	if h.u64(resAt+48) != 2e9 || h.u64(resAt+40) != 1e9 {
		t.Fatalf("times %d %d", h.u64(resAt+40), h.u64(resAt+48))
	}
	b, _ := os.ReadFile(filepath.Join(top, "data", "f"))
	if want := []byte("HEllo\x00\x00\x00\x00\x00HE!"); !bytes.Equal(b, want) {
		t.Fatalf("file %q, want %q", b, want)
	}
}

func TestStdio(t *testing.T) {
	var out, errb bytes.Buffer
	h := newHarness(t, Config{Stdout: &out, Stderr: &errb, Args: []string{"a", "bc"}, Env: []string{"K=V"}})
	h.write(scratch, []byte("hi"))
	h.write(scratch+2, []byte(" there"))
	h.write(resAt+64, le.AppendUint32(le.AppendUint32(le.AppendUint32(le.AppendUint32(nil, scratch), 2), scratch+2), 6))
	if e := h.call("fd_write", 1, resAt+64, 2, resAt); e != 0 || h.u32(resAt) != 8 || out.String() != "hi there" {
		t.Fatalf("stdout: %d %d %q", e, h.u32(resAt), out.String())
	}
	if e := h.call("fd_write", 2, resAt+64, 1, resAt); e != 0 || errb.String() != "hi" {
		t.Fatalf("stderr: %d %q", e, errb.String())
	}
	if e := h.call("fd_read", 0, resAt+64, 1, resAt); e != 0 || h.u32(resAt) != 0 {
		t.Fatalf("stdin EOF: %d %d", e, h.u32(resAt))
	}
	for fd := uint64(0); fd < 3; fd++ {
		if e := h.call("fd_fdstat_get", fd, resAt); e != 0 || h.read(resAt, 1)[0] != filetypeCharacterDevice {
			t.Fatalf("fdstat %d: %d", fd, e)
		}
		if e := h.call("fd_filestat_get", fd, resAt); e != 0 || h.read(resAt+16, 1)[0] != filetypeCharacterDevice {
			t.Fatalf("filestat %d: %d", fd, e)
		}
	}
	if e := h.call("args_sizes_get", resAt, resAt+4); e != 0 || h.u32(resAt) != 2 || h.u32(resAt+4) != 5 {
		t.Fatalf("args_sizes_get %d %d %d", e, h.u32(resAt), h.u32(resAt+4))
	}
	if e := h.call("args_get", resAt, scratch); e != 0 || string(h.read(scratch, 5)) != "a\x00bc\x00" || h.u32(resAt+4) != scratch+2 {
		t.Fatalf("args_get %d", e)
	}
	if e := h.call("environ_get", resAt, scratch); e != 0 || string(h.read(scratch, 4)) != "K=V\x00" {
		t.Fatalf("environ_get %d", e)
	}
}
