package job

import (
	"fmt"
	"os"

	"github.com/librahost/librahost/ckpt"
	"github.com/librahost/librahost/wasi"
)

// A rank's files under the job's mounts move with it when a recovery
// restarts it on another host: each of its checkpoints holds the file
// delta of its epoch (what it changed since its checkpoint before, and an
// ended rank's first checkpoint as ended what it wrote before it ended),
// and its replicas hold them too; each names the checkpoint it goes on
// from (FilesBase). The host it moves to redoes the chain of deltas from
// the start to the epoch restored, in order, on the mounts as the job
// found them there (a directory that exists on every host),
// then starts the rank's file journal anew at that epoch. A host that
// does not hold every one of those epochs (the rank moved once already,
// and the replicas made since hold only the epochs after its move) stops
// the job in one line rather than give the rank other files. So that it
// can move again, the host it moved to copies those epochs to its own
// replica hosts (replicateMoved), which held only the epochs after.

// filesBase returns the base of the file delta of rank's checkpoint of
// epoch, and makes epoch the next one's.
func (r *shareRun) filesBase(rank int, epoch uint64) uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	base := r.filesAt[rank]
	r.filesAt[rank] = epoch
	return base
}

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
	// The chain of deltas back from epoch to the start.
	type link struct {
		epoch uint64
		files []byte
	}
	var chain []link
	for e := epoch; e > 0; {
		if !held[e] {
			return fmt.Errorf("%w: rank %d moves to this host, which does not hold its checkpoint %d: the files it wrote up to epoch %d cannot be made here (its host died before its earlier checkpoints were copied here)",
				ErrDamagedState, rank, e, epoch)
		}
		m, err := j.store.Manifest(j.key(rank), e)
		if err != nil {
			return fmt.Errorf("rank %d: checkpoint %d: %w", rank, e, err)
		}
		rc, _, err := decodeRankCheckpoint(m.Host, rank)
		if err != nil {
			return fmt.Errorf("rank %d: checkpoint %d: %w", rank, e, err)
		}
		files, err := j.store.ReadFiles(m)
		if err != nil {
			return fmt.Errorf("rank %d: checkpoint %d: %w", rank, e, err)
		}
		if rc.FilesBase >= e {
			return fmt.Errorf("%w: rank %d: checkpoint %d goes on from the files of epoch %d", ErrDamagedState, rank, e, rc.FilesBase)
		}
		chain = append(chain, link{e, files})
		e = rc.FilesBase
	}
	mounts := mountsFromJSON(j.rec.Mounts)
	for i := len(chain) - 1; i >= 0; i-- {
		if len(chain[i].files) == 0 {
			continue
		}
		if err := wasi.RedoFiles(mounts, chain[i].files); err != nil {
			return fmt.Errorf("rank %d: its files of checkpoint %d: %w", rank, chain[i].epoch, err)
		}
	}
	js := j.journals[rank]
	os.Remove(js.path) // a journal of an earlier stay here is of other files
	os.RemoveAll(js.path + ".trash")
	js.moved = true
	return nil
}

// replicateMoved copies rank's checkpoints up to epoch, made on the host
// it ran on, to this host's replica hosts, in the background.
func (r *shareRun) replicateMoved(rank int, epoch uint64) {
	r.mu.Lock()
	to := ckpt.ReplicaHosts(r.s.Host, r.part.Live(), r.s.Proto.Replicas)
	r.mu.Unlock()
	infos, err := r.j.store.Epochs(r.j.key(rank))
	if err != nil {
		r.j.logf("rank %d: its checkpoints made on another host: %v", rank, err)
		return
	}
	go func() {
		for _, in := range infos {
			if in.Epoch > epoch {
				break
			}
			for _, h := range to {
				if err := r.s.Replicate(rank, in.Epoch, h); err != nil {
					r.j.logf("rank %d: its checkpoint %d made on another host: replica to host h%d: %v", rank, in.Epoch, h, err)
					return
				}
			}
		}
		r.j.logf("rank %d: its checkpoints up to %d made on another host are on hosts %v too", rank, epoch, to)
	}()
}
