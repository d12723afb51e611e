package job

import (
	"fmt"
	"os"

	"github.com/librahost/librahost/wasi"
)

// A rank's files under the job's mounts move with it when a recovery
// restarts it on another host: each of its checkpoints holds the file
// delta of its epoch (what it changed since its checkpoint before, and an
// ended rank's first checkpoint as ended what it wrote before it ended),
// and its replicas hold them too. The host it moves to redoes every delta
// of epochs 1 to the one restored, in order, on the mounts as the job
// found them there at its start (a directory that exists on every host),
// then starts the rank's file journal anew at that epoch. A host that
// does not hold every one of those epochs (the rank moved once already,
// and the replicas made since hold only the epochs after its move) stops
// the job in one line rather than give the rank other files.

// moveFiles makes rank's files here as of epoch from its checkpoints in
// the store, for a rank that ran on another host.
func (r *shareRun) moveFiles(rank int, epoch uint64) error {
	j := r.j
	infos, err := j.store.Epochs(j.key(rank))
	if err != nil {
		return err
	}
	held := map[uint64]bool{}
	for _, in := range infos {
		held[in.Epoch] = true
	}
	mounts := mountsFromJSON(j.rec.Mounts)
	for e := uint64(1); e <= epoch; e++ {
		if !held[e] {
			return fmt.Errorf("%w: rank %d moves to this host, which does not hold its checkpoint %d: the files it wrote up to epoch %d cannot be made here (a rank's files move once; a second move is not supported yet)",
				ErrDamagedState, rank, e, epoch)
		}
		m, err := j.store.Manifest(j.key(rank), e)
		if err != nil {
			return fmt.Errorf("rank %d: checkpoint %d: %w", rank, e, err)
		}
		files, err := j.store.ReadFiles(m)
		if err != nil {
			return fmt.Errorf("rank %d: checkpoint %d: %w", rank, e, err)
		}
		if len(files) == 0 {
			continue
		}
		if err := wasi.RedoFiles(mounts, files); err != nil {
			return fmt.Errorf("rank %d: its files of checkpoint %d: %w", rank, e, err)
		}
	}
	js := j.journals[rank]
	os.Remove(js.path) // a journal of an earlier stay here is of other files
	os.RemoveAll(js.path + ".trash")
	js.moved = true
	return nil
}
