package wasi

import (
	"fmt"
	"path/filepath"
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
