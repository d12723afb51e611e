package job

import (
	"encoding/json"
	"io"
	"slices"
	"testing"

	"github.com/librahost/librahost/ckpt"
	"github.com/librahost/librahost/transport"
)

// A rank that moves takes its file history: the file deltas of its
// chain of checkpoints up to its newest committed one (read from the
// store, back through each one's FilesBase), those of its checkpoints
// since, then what it wrote since its last one. Where it arrives, its
// checkpoints carry that history with no base until one taken there is
// committed (a commit of the epoch it came at, or before, does not make
// a base of a checkpoint the host does not hold); a recovery to that
// epoch or before makes its files again from the chain.
func TestMovedFilesHistory(t *testing.T) {
	store := testStore(t, ckpt.Config{})
	j := &jobRun{cfg: Config{Log: io.Discard}, store: store,
		rec: &runRecord{Job: "job", runSpec: runSpec{Mounts: []mountJSON{{Host: t.TempDir(), Guest: "/out"}}}}}
	// Checkpoints 2 (from the start), 3 (abandoned: its delta rides in
	// 4's) and 4 (from 2) of rank 1; 5 is not committed yet.
	for _, c := range []struct {
		epoch, base uint64
		files       string
	}{{2, 0, "a"}, {4, 2, "bc"}} {
		hs, err := json.Marshal(&rankCheckpoint{Version: rankStateVersion, FilesBase: c.base,
			Comm: transport.AppendRankState(nil, &transport.RankState{Rank: 1})})
		if err != nil {
			t.Fatal(err)
		}
		p, err := store.Capture(ckpt.Meta{Key: j.key(1), Epoch: c.epoch, Host: hs, Files: []byte(c.files)}, make([]byte, 1<<16))
		if err != nil {
			t.Fatal(err)
		}
		<-p.Done()
		if err := p.Err(); err != nil {
			t.Fatal(err)
		}
	}
	r := &shareRun{j: j, files: map[int]*rankFiles{1: {base: 4, pending: []epochDelta{{5, []byte("d")}}}},
		endFiles: map[int][]byte{1: []byte("e")}, taken: []uint64{0, 5}}
	got, err := r.movingFiles(1, nil)
	if err != nil || string(got) != "abcde" {
		t.Fatalf("the history of a rank that moves: %q, %v; want \"abcde\"", got, err)
	}
	// A base whose checkpoint is not here: the move fails, saying so.
	r.files[1].base = 3
	if _, err := r.movingFiles(1, nil); err == nil {
		t.Fatal("a history with a checkpoint missing was made")
	}

	// Where it arrives, at epoch 6.
	r.migs.init()
	r.filesMoved(1, 6, []byte("H"))
	if r.endFiles[1] != nil {
		t.Fatal("what it wrote after it ended, in its history, is kept to write again")
	}
	step := func(epoch uint64, delta, want string, wantBase uint64) {
		t.Helper()
		blob, base := r.filesOf(1, epoch, []byte(delta))
		if string(blob) != want || base != wantBase {
			t.Fatalf("checkpoint %d: files %q from %d, want %q from %d", epoch, blob, base, want, wantBase)
		}
	}
	r.filesCommitted(6)
	step(7, "x", "Hx", 0)
	r.filesCommitted(6)
	step(8, "y", "Hxy", 0)
	r.filesCommitted(7)
	step(9, "z", "yz", 7)

	// A recovery to the epoch it came at remakes its files; one to a
	// later epoch rolls them back by its journal here.
	rec := &recovery{epoch: 6, moved: []int{3}}
	if got := r.remade(rec, []int{0, 1}); !slices.Equal(got, []int{3, 1}) {
		t.Fatalf("a recovery to the epoch it came at remakes the files of ranks %v, want [3 1]", got)
	}
	r.filesMoved(1, 6, nil)
	if got := r.remade(&recovery{epoch: 7}, []int{0, 1}); len(got) != 0 {
		t.Fatalf("a recovery to an epoch after it came remakes the files of ranks %v", got)
	}
}
