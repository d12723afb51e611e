package wasi

import (
	"fmt"
	"path/filepath"
	"testing"
)

// RedoFiles redoes every delta of a churning guest, in order, on a copy
// of its directory as it started: the copy ends as the guest's files
// (a rank's files made on another host). A delta naming a mount that is
// not there is refused.
func TestRedoFiles(t *testing.T) {
	dir, state := t.TempDir(), t.TempDir()
	churnSetup(t, dir)
	other := filepath.Join(t.TempDir(), "v")
	copyTree(t, dir, other)
	var last []byte
	s := runChurn(t, dir, filepath.Join(state, "journal"), 11, 0, 6, 25, false, func(s *System, e uint64, delta []byte) error {
		last = delta
		if err := RedoFiles([]Mount{{HostPath: other, GuestPath: "/data"}}, delta); err != nil {
			return fmt.Errorf("epoch %d: %v", e, err)
		}
		return nil
	})
	s.Close()
	if d := diffTrees(treeOf(t, dir), treeOf(t, other)); d != "" {
		t.Fatalf("the files made from the deltas differ from the guest's:\n%s", d)
	}
	if err := RedoFiles(nil, last); err == nil {
		t.Fatal("a delta redone without its mount")
	}
}
