package wasi

import (
	"bytes"
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// RedoFiles redoes every delta of a churning guest, in order, on a copy
// of its directory as it started: the copy ends as the guest's files
// (a rank's files made on another host); so does a copy on which the
// deltas are redone three at a time, laid end to end (those of a
// checkpoint and of the uncommitted ones before it). A delta naming a
// mount that is not there is refused.
func TestRedoFiles(t *testing.T) {
	dir, state := t.TempDir(), t.TempDir()
	churnSetup(t, dir)
	other, joined := filepath.Join(t.TempDir(), "v"), filepath.Join(t.TempDir(), "j")
	copyTree(t, dir, other)
	copyTree(t, dir, joined)
	var last, pending []byte
	s := runChurn(t, dir, filepath.Join(state, "journal"), 11, 0, 6, 25, false, func(s *System, e uint64, delta []byte) error {
		last = delta
		if err := RedoFiles([]Mount{{HostPath: other, GuestPath: "/data"}}, delta); err != nil {
			return fmt.Errorf("epoch %d: %v", e, err)
		}
		if pending = append(pending, delta...); e%3 == 0 {
			if err := RedoFiles([]Mount{{HostPath: joined, GuestPath: "/data"}}, pending); err != nil {
				return fmt.Errorf("epochs to %d joined: %v", e, err)
			}
			pending = nil
		}
		return nil
	})
	s.Close()
	if err := RedoFiles([]Mount{{HostPath: joined, GuestPath: "/data"}}, pending); err != nil {
		t.Fatalf("the last deltas joined: %v", err)
	}
	if d := diffTrees(treeOf(t, dir), treeOf(t, other)); d != "" {
		t.Fatalf("the files made from the deltas differ from the guest's:\n%s", d)
	}
	if d := diffTrees(treeOf(t, dir), treeOf(t, joined)); d != "" {
		t.Fatalf("the files made from the deltas joined differ from the guest's:\n%s", d)
	}
	if err := RedoFiles(nil, last); err == nil {
		t.Fatal("a delta redone without its mount")
	}
}

// PendingFiles returns what CheckpointFiles would, without sealing the
// journal: at each checkpoint of a churning guest, the changes since the
// one before are those the checkpoint's delta then holds, and asking for
// them adds no epoch to the journal (a rank that moves takes them with
// it; if it stays, its next checkpoint holds them).
func TestPendingFiles(t *testing.T) {
	dir, journal := t.TempDir(), filepath.Join(t.TempDir(), "journal")
	churnSetup(t, dir)
	var stderr bytes.Buffer
	w := &pendingWriter{t: t, journal: journal}
	s, err := New(Config{Args: []string{"guest", "churn", "/data", "7", "0", "5", "25"}, Stdout: w, Stderr: &stderr,
		Mounts: []Mount{{HostPath: dir, GuestPath: "/data"}}, Journal: journal})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	w.s = s
	if _, err := s.CheckpointFiles(0); err != nil {
		t.Fatal(err)
	}
	res := runSystem(t, s, &bytes.Buffer{}, &stderr)
	if res.err != nil || res.exit != 0 || w.checked != 5 {
		t.Fatalf("churn: exit %d %v, %d checkpoints checked, want 5\n%s", res.exit, res.err, w.checked, stderr.String())
	}
}

// pendingWriter is a guest's stdout that, at each "CKPT e" line, compares
// PendingFiles with the delta CheckpointFiles then seals.
type pendingWriter struct {
	t       *testing.T
	s       *System
	journal string
	checked int
}

func (w *pendingWriter) Write(p []byte) (int, error) {
	for _, line := range strings.Split(string(p), "\n") {
		e, ok := strings.CutPrefix(line, "CKPT ")
		if !ok {
			continue
		}
		epoch, _ := strconv.ParseUint(e, 10, 64)
		before, _, _ := JournalEpochs(w.journal)
		pending, err := w.s.PendingFiles(epoch)
		after, _, _ := JournalEpochs(w.journal)
		if err != nil || !slices.Equal(before, after) {
			w.t.Errorf("epoch %d: PendingFiles: %v; journal epochs %v, then %v", epoch, err, before, after)
		}
		delta, err := w.s.CheckpointFiles(epoch)
		if err != nil || len(delta) < 20 || !bytes.Equal(pending, delta) {
			w.t.Errorf("epoch %d: %d bytes pending, the checkpoint's delta %d (%v)", epoch, len(pending), len(delta), err)
		}
		w.checked++
	}
	return len(p), nil
}

// RedoFiles redoes the deltas of a guest that churns files of its own
// from the start over a copy of its directory that already holds what
// some of them made (a rank that comes back to a host it moved to
// before finds the files made there then): the copy ends as the guest's
// files all the same.
func TestRedoFilesOverStale(t *testing.T) {
	for _, seed := range []uint64{11, 12, 13, 14} {
		dir, start := t.TempDir(), filepath.Join(t.TempDir(), "start")
		copyTree(t, dir, start)
		var deltas [][]byte
		s := runChurn(t, dir, filepath.Join(t.TempDir(), "journal"), seed, 0, 6, 25, false, func(_ *System, _ uint64, delta []byte) error {
			deltas = append(deltas, delta)
			return nil
		})
		s.Close()
		var all []byte
		for _, d := range deltas {
			all = append(all, d...)
		}
		for k := 1; k < len(deltas); k++ {
			stale := filepath.Join(t.TempDir(), "stale")
			copyTree(t, start, stale)
			m := []Mount{{HostPath: stale, GuestPath: "/data"}}
			for _, d := range deltas[:k] {
				if err := RedoFiles(m, d); err != nil {
					t.Fatalf("seed %d: the first %d deltas: %v", seed, k, err)
				}
			}
			if err := RedoFiles(m, all); err != nil {
				t.Fatalf("seed %d: every delta over the files of the first %d: %v", seed, k, err)
			}
			if d := diffTrees(treeOf(t, dir), treeOf(t, stale)); d != "" {
				t.Fatalf("seed %d: every delta over the files of the first %d differ from the guest's:\n%s", seed, k, d)
			}
		}
	}
}
