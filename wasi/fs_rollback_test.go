package wasi

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestRollbackEachChange makes one kind of change after a checkpoint and
// checks that a rollback in a fresh System undoes it, modification times
// included.
func TestRollbackEachChange(t *testing.T) {
	old := time.Date(2001, 2, 3, 4, 5, 6, 7, time.UTC)
	pwrite := func(h *harness, fd uint32, data string, off uint64) errno {
		const iovAt, dataAt = resAt + 256, scratch + 4096
		h.write(dataAt, []byte(data))
		return h.call("fd_pwrite", uint64(fd), h.iov(iovAt, dataAt, uint32(len(data))), 1, off, resAt)
	}
	for _, tc := range []struct {
		name   string
		change func(h *harness) errno
	}{
		{"overwrite and extend", func(h *harness) errno {
			fd, _ := h.open(3, "f", 0, 0, rightsRW)
			pwrite(h, fd, "XYZ", 2)
			return pwrite(h, fd, "tail", 100)
		}},
		{"truncate", func(h *harness) errno {
			fd, _ := h.open(3, "f", 0, 0, rightsRW)
			return h.call("fd_filestat_set_size", uint64(fd), 1)
		}},
		{"open with O_TRUNC", func(h *harness) errno {
			_, e := h.open(3, "f", 0, oflagTrunc, rightsRW)
			return e
		}},
		{"open a large file with O_TRUNC", func(h *harness) errno {
			fd, e := h.open(3, "big", 0, oflagTrunc, rightsRW)
			pwrite(h, fd, "small now", 0)
			return e
		}},
		{"create", func(h *harness) errno {
			fd, e := h.open(3, "d/new", 0, oflagCreat, rightsRW)
			pwrite(h, fd, "new", 0)
			return e
		}},
		{"unlink", func(h *harness) errno { return h.pathCall("path_unlink_file", 3, "f") }},
		{"unlink open and write", func(h *harness) errno {
			fd, _ := h.open(3, "f", 0, 0, rightsRW)
			h.pathCall("path_unlink_file", 3, "f")
			return pwrite(h, fd, "ghost", 0)
		}},
		{"rmdir", func(h *harness) errno { return h.pathCall("path_remove_directory", 3, "e") }},
		{"mkdir", func(h *harness) errno { return h.pathCall("path_create_directory", 3, "d/sub") }},
		{"rename over file", func(h *harness) errno { return h.twoPathCall("path_rename", 3, "d/g", 3, "f") }},
		{"rename dir over empty dir", func(h *harness) errno { return h.twoPathCall("path_rename", 3, "d", 3, "e") }},
		{"remove symlink", func(h *harness) errno { return h.pathCall("path_unlink_file", 3, "l") }},
		{"symlink", func(h *harness) errno { return h.symlink("f", 3, "l2") }},
		{"hard link then write", func(h *harness) errno {
			h.twoPathCall("path_link", 3, "f", 3, "h")
			h.pathCall("path_unlink_file", 3, "f")
			fd, _ := h.open(3, "h", 0, 0, rightsRW)
			return pwrite(h, fd, "via link", 0)
		}},
		{"set times", func(h *harness) errno {
			p, n := h.str("f", scratch)
			return h.call("path_filestat_set_times", 3, 0, p, n, 5e9, 6e9, fstflagAtim|fstflagMtim)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir, state := t.TempDir(), t.TempDir()
			os.WriteFile(filepath.Join(dir, "f"), []byte("0123456789"), 0o644)
			os.Mkdir(filepath.Join(dir, "d"), 0o755)
			os.Mkdir(filepath.Join(dir, "e"), 0o755)
			os.WriteFile(filepath.Join(dir, "big"), bytes.Repeat([]byte("big"), 100000), 0o640)
			os.WriteFile(filepath.Join(dir, "d", "g"), []byte("gg"), 0o600)
			os.Symlink("d/g", filepath.Join(dir, "l"))
			os.Chtimes(filepath.Join(dir, "f"), old, old)
			cfg := Config{Mounts: []Mount{{HostPath: dir, GuestPath: "/data"}}, Journal: filepath.Join(state, "j")}
			want := treeOf(t, dir)
			h := newHarness(t, cfg)
			if _, err := h.s.CheckpointFiles(1); err != nil {
				t.Fatal(err)
			}
			if e := tc.change(h); e != 0 {
				t.Fatalf("change: errno %d", e)
			}
			if fi, err := os.Stat(filepath.Join(dir, "f")); diffTrees(want, treeOf(t, dir)) == "" &&
				err == nil && fi.ModTime().Equal(old) {
				t.Fatal("the change changed nothing")
			}
			s, err := New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			warns, err := s.RollbackFiles(1)
			if err != nil || len(warns) > 0 {
				t.Fatalf("rollback: %v %q", err, warns)
			}
			if d := diffTrees(want, treeOf(t, dir)); d != "" {
				t.Fatalf("after rollback:\n%s", d)
			}
			if fi, err := os.Stat(filepath.Join(dir, "f")); err != nil || !fi.ModTime().Equal(old) {
				t.Fatalf("mtime of f after rollback: %v %v", fi.ModTime(), err)
			}
			if des, _ := os.ReadDir(filepath.Join(state, "j.trash")); len(des) != 0 {
				t.Fatalf("trash not empty: %d", len(des))
			}
		})
	}
}

// TestRollbackRefused checks the errors of rollbacks the journal cannot
// serve.
func TestRollbackRefused(t *testing.T) {
	dir := t.TempDir()
	s, _ := New(Config{Mounts: []Mount{{HostPath: dir, GuestPath: "/data"}}})
	if _, err := s.RollbackFiles(1); err != ErrNoJournal {
		t.Fatalf("without journal: %v", err)
	}
	s.Close()
	cfg := Config{Mounts: []Mount{{HostPath: dir, GuestPath: "/data"}}, Journal: filepath.Join(t.TempDir(), "j")}
	s, _ = New(cfg)
	if _, err := s.RollbackFiles(1); err == nil || !strings.Contains(err.Error(), "file rollback") {
		t.Fatalf("missing journal: %v", err)
	}
	if _, err := s.CheckpointFiles(2); err == nil {
		t.Fatal("a failed rollback let a checkpoint start a new journal")
	}
	s.Close()
	// A release that would drop less than journalCompactMin leaves the
	// journal as it is, still able to serve the epoch released; one that
	// drops enough rewrites it without that epoch.
	defer func(min int64) { journalCompactMin = min }(journalCompactMin)
	for _, compact := range []bool{false, true} {
		cfg.Journal = filepath.Join(t.TempDir(), "j")
		if compact {
			journalCompactMin = 0
		}
		s, _ = New(cfg)
		s.CheckpointFiles(1)
		s.CheckpointFiles(2)
		s.ReleaseFiles(2)
		s.Close()
		s, _ = New(cfg)
		_, err := s.RollbackFiles(1)
		s.Close()
		if compact && err == nil {
			t.Fatal("rollback to a released epoch succeeded after the journal was rewritten")
		}
		if !compact && err != nil {
			t.Fatalf("rollback to a released epoch of a journal not rewritten: %v", err)
		}
	}
	s, _ = New(cfg)
	defer s.Close()
	if _, err := s.RollbackFiles(2); err != nil {
		t.Fatalf("rollback to the oldest kept epoch: %v", err)
	}
}
