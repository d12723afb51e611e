package job

import (
	"errors"
	"fmt"
	"os"

	"github.com/librahost/librahost/host"
	"github.com/librahost/librahost/wasi"
)

// The files a migrating rank wrote under the job's read-write mounts go
// with its last state (migrate.go), as a recovery's moveFiles makes them
// on another host (share_files.go): its file history, the deltas from the
// start laid end to end — the chain of its checkpoints up to its newest
// committed one, read from the store here, the deltas of its checkpoints
// since, and what it wrote since its last checkpoint, read from its
// journal without sealing it (so that if the move fails the rank goes on
// here with its journal untouched and its next checkpoint still holds
// those writes). The target redoes the history on its mounts, as the job
// found them there or as the rank left them on an earlier stay (a file it
// created is made anew, truncated), before the rank runs there; its
// journal starts anew at the rank's epoch, and until one of its
// checkpoints taken there is committed each carries the whole history
// with no base, since neither the target's store nor its replica hosts
// hold the checkpoints the history came from.
//
// Once the rank has left (Drop), the source returns the files it changed
// there to how they were before it ran there, by its journal (left): its
// files are on one host, where it runs, and a move or a recovery of it
// back redoes its history on the directory as the job found it. (Of a
// rank that came to the source by a move or a recovery, that is as its
// arrival made them: a later redo clears the names the history makes
// anew, but a file that was there before the job and that the rank
// removed or renamed before that arrival cannot be made back there; a
// rank whose program had ended has no worker left to undo them with: its
// files stay.) If the move fails, the rank goes on at the source with its
// files and journal as they were.

// movingFiles returns the file history of rank, stopped here to move (w
// its worker; nil for a rank whose program has ended: what it wrote after
// its last checkpoint was kept at its exit); nil if the job has no
// read-write mount.
func (r *shareRun) movingFiles(rank int, w *host.Worker) ([]byte, error) {
	if !r.j.writable() {
		return nil, nil
	}
	r.mu.Lock()
	var base uint64
	var pending [][]byte
	if f := r.files[rank]; f != nil {
		base = f.base
		for _, p := range f.pending {
			pending = append(pending, p.delta)
		}
	}
	ended, epoch := r.endFiles[rank], r.taken[rank]
	r.mu.Unlock()
	history, err := r.chainFiles(rank, base)
	if err != nil {
		return nil, err
	}
	for _, p := range pending {
		history = append(history, p...)
	}
	if w == nil {
		return append(history, ended...), nil
	}
	since, err := w.PendingFiles(epoch + 1)
	if err != nil {
		return nil, fmt.Errorf("rank %d: what it wrote since its checkpoint %d cannot be read: %w", rank, epoch, err)
	}
	return append(history, since...), nil
}

// filesMoved starts the file deltas of rank, which moved here at epoch
// with its file history: its next checkpoints carry the history, from the
// start, until one of them is committed. The caller holds r.mu.
func (r *shareRun) filesMoved(rank int, epoch uint64, history []byte) {
	f := &rankFiles{}
	if len(history) > 0 {
		// Taken as the delta of a checkpoint after epoch: a commit of
		// epoch (or before) does not make a base of a checkpoint that is
		// not here.
		f.pending = []epochDelta{{epoch + 1, history}}
	}
	r.files[rank] = f
	delete(r.endFiles, rank) // in the history
	r.migs.came[rank] = epoch
}

// left is told how rank's stop here for its move ended (end: host.ErrMoved
// if it left, stopped at its capture point with its worker w), and
// returns end. A rank that left has the files it changed here returned
// to how they were before it ran here, by its journal, which is then
// dropped.
func (r *shareRun) left(rank int, w *host.Worker, end error) error {
	if !errors.Is(end, host.ErrMoved) || !r.j.writable() {
		return end
	}
	path := r.journal(rank)
	epochs, _, err := wasi.JournalEpochs(path)
	if err == nil && len(epochs) == 0 {
		err = errors.New("its journal holds no checkpoint")
	}
	var warnings []string
	if err == nil {
		warnings, err = w.RollbackFiles(epochs[0])
	}
	for _, msg := range warnings {
		r.j.logf("rank %d left: %s", rank, msg)
	}
	if err != nil {
		r.j.logf("rank %d left: the files it wrote here stay (%v)", rank, err)
		return end
	}
	os.Remove(path)
	os.RemoveAll(path + ".trash")
	r.j.logf("rank %d left: its files here are as they were before it ran here", rank)
	return end
}

// waitLeft waits until the files rank changed here on an earlier stay
// are as before it ran here (left), if it left this host running; its
// files are made again from its history after.
func (r *shareRun) waitLeft(rank int) {
	r.mu.Lock()
	ch := r.migs.leaving[rank]
	delete(r.migs.leaving, rank)
	r.mu.Unlock()
	if ch != nil {
		<-ch
	}
}
