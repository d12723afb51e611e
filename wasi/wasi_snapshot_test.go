package wasi

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func snapshotConfig(t *testing.T) Config {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "f.txt"), []byte("hello world"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	return Config{Mounts: []Mount{{HostPath: dir, GuestPath: "/data"}, {HostPath: t.TempDir(), GuestPath: "ro", ReadOnly: true}}}
}

func TestSnapshotRoundTrip(t *testing.T) {
	cfg := snapshotConfig(t)
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()

	// Shape the table as a guest would: a file with an offset, a listed
	// directory, renumbered stdio, a closed stdin, a pending sleep.
	f, err := s.mounts[0].root.OpenFile("f.txt", os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	fe := &fdEntry{kind: kindFile, mount: 0, rel: "f.txt", file: f, offset: 6, fdflags: fdflagAppend,
		read: true, write: true, rightsBase: fileRightsBase}
	fd, _ := s.fds.insert(fe)
	d, err := s.mounts[0].root.Open("sub")
	if err != nil {
		t.Fatal(err)
	}
	de := &fdEntry{kind: kindDir, mount: 0, rel: "sub", file: d, read: true, rightsBase: dirRightsBase}
	if de.dir, err = listDir(de); err != nil {
		t.Fatal(err)
	}
	dfd, _ := s.fds.insert(de)
	s.fds.remove(0)
	s.fds.m[9] = s.fds.m[1]
	s.fds.remove(1)
	s.hasPending, s.pendingStart = true, 12345

	snap, err := s.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	s2, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if err := s2.Restore(snap); err != nil {
		t.Fatal(err)
	}
	snap2, err := s2.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(snap, snap2) {
		t.Fatalf("snapshot changed across restore:\n%x\n%x", snap, snap2)
	}
	e, ok := s2.fds.get(fd)
	if !ok || e.offset != 6 || e.file == nil {
		t.Fatalf("file fd %d: %+v", fd, e)
	}
	buf := make([]byte, 5)
	if _, err := e.file.ReadAt(buf, e.offset); err != nil || string(buf) != "world" {
		t.Fatalf("reopened file reads %q, %v", buf, err)
	}
	if e, ok := s2.fds.get(dfd); !ok || e.file == nil || len(e.dir.entries) != 2 {
		t.Fatalf("dir fd: %+v", e)
	}
	if _, ok := s2.fds.get(0); ok {
		t.Fatal("closed stdin came back")
	}
	if e, ok := s2.fds.get(9); !ok || e.kind != kindStdout {
		t.Fatal("renumbered stdout lost")
	}
	if !s2.hasPending || s2.pendingStart != 12345 {
		t.Fatal("pending sleep lost")
	}
}

func TestRestoreRefuses(t *testing.T) {
	cfg := snapshotConfig(t)
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	snap, err := s.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		cfg  Config
		snap []byte
		want error
	}{
		{"garbage", cfg, []byte("nope"), ErrSnapshot},
		{"truncated", cfg, snap[:len(snap)-1], ErrSnapshot},
		{"trailing", cfg, append(append([]byte(nil), snap...), 0), ErrSnapshot},
		{"other mounts", Config{}, snap, ErrRestore},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := New(tc.cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			if err := s.Restore(tc.snap); !errors.Is(err, tc.want) {
				t.Fatalf("Restore: %v, want %v", err, tc.want)
			}
		})
	}
}

func FuzzRestore(f *testing.F) {
	dir := f.TempDir()
	os.WriteFile(filepath.Join(dir, "f.txt"), []byte("x"), 0o644)
	cfg := Config{Mounts: []Mount{{HostPath: dir, GuestPath: "/data"}}}
	s, err := New(cfg)
	if err != nil {
		f.Fatal(err)
	}
	snap, _ := s.Snapshot()
	s.Close()
	f.Add(snap)
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		if err := s.Restore(b); err != nil {
			return
		}
		b2, err := s.Snapshot()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := decodeSnapshot(b2); err != nil {
			t.Fatalf("re-encoded snapshot does not decode: %v", err)
		}
	})
}
