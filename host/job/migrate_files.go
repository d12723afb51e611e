package job

import (
	"fmt"

	"github.com/librahost/librahost/host"
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
// hold the checkpoints the history came from. The source keeps its copy
// of the files; a rank that comes back has its files made again from its
// history, over them.

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
