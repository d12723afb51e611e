package job

import (
	"errors"
	"fmt"
	"os"
	"slices"

	"github.com/librahost/librahost/ckpt"
	"github.com/librahost/librahost/wasi"
)

// A rank's files under the job's mounts move with it when a recovery
// restarts it on another host: each of its checkpoints holds the file
// deltas of its epochs since its newest committed checkpoint, which it
// names (FilesBase), and its replicas hold them too. The host it moves to
// redoes the chain of those deltas from the start to the epoch restored,
// in order, on the mounts as the job found them there (a directory that
// exists on every host), then starts the rank's file journal anew at that
// epoch. A host that does not hold every checkpoint of the chain stops the
// job in one line rather than give the rank other files. So that it can
// move again, the host it moved to copies those checkpoints to its own
// replica hosts (replicateChains), which held only the epochs after,
// before it reports the rank's next checkpoint durable: an epoch
// committed since the move has the whole chain on them. So does a host
// whose replica host died, for the chains of its ranks, to the new one.
//
// A checkpoint names only a committed one as its base: the delta of a
// round that was abandoned (a write or a replica that failed, a host
// lost) is carried in the checkpoints after it until one of them is
// committed, so that no chain needs a checkpoint that the round's
// abandon dropped (or that a host never received). A rollback starts the
// rank's deltas anew at the epoch it goes back to. A job whose mounts are
// all read-only has no files to move.

// rankFiles is what the next checkpoint of a rank here needs of its
// file deltas.
type rankFiles struct {
	base    uint64       // its newest checkpoint known committed, or the epoch it went back to
	pending []epochDelta // its checkpoints since, in order
}

type epochDelta struct {
	epoch uint64
	delta []byte
}

// filesOf returns the file blob of rank's checkpoint of epoch, whose own
// delta is delta, and its base: the deltas of its checkpoints since its
// newest committed one, laid end to end (wasi.RedoFiles), then delta.
func (r *shareRun) filesOf(rank int, epoch uint64, delta []byte) ([]byte, uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	f := r.files[rank]
	if f == nil {
		f = &rankFiles{}
		r.files[rank] = f
	}
	var blob []byte
	for _, p := range f.pending {
		blob = append(blob, p.delta...)
	}
	if blob == nil {
		blob = delta
	} else {
		blob = append(blob, delta...)
	}
	f.pending = append(f.pending, epochDelta{epoch, delta})
	return blob, f.base
}

// filesCommitted makes epoch, committed, the base of the next checkpoint
// of each rank here that took it. The caller holds r.mu.
func (r *shareRun) filesCommitted(epoch uint64) {
	for _, f := range r.files {
		i := 0
		for i < len(f.pending) && f.pending[i].epoch <= epoch {
			f.base = f.pending[i].epoch
			i++
		}
		f.pending = f.pending[i:]
	}
}

// filesRestart starts rank's file deltas anew at epoch, which it went
// back to. The caller holds r.mu.
func (r *shareRun) filesRestart(rank int, epoch uint64) {
	r.files[rank] = &rankFiles{base: epoch}
	delete(r.endFiles, rank) // of the incarnation left
}

// writable reports whether the job has a mount its ranks can write.
func (j *jobRun) writable() bool {
	return slices.ContainsFunc(j.rec.Mounts, func(m mountJSON) bool { return !m.ReadOnly })
}

// moveFiles makes rank's files here as of epoch from its checkpoints in
// the store, for a rank that ran on another host.
func (r *shareRun) moveFiles(rank int, epoch uint64) error {
	j := r.j
	if !j.writable() {
		// Nothing to make; the journal starts anew at epoch.
		return r.restartJournal(rank)
	}
	chain, err := r.chainFiles(rank, epoch)
	if err != nil {
		return err
	}
	if err := r.redoFiles(rank, chain); err != nil {
		return err
	}
	return r.restartJournal(rank)
}

// redoFiles redoes rank's file history (deltas laid end to end) on the
// mounts here.
func (r *shareRun) redoFiles(rank int, history []byte) error {
	if len(history) == 0 {
		return nil
	}
	if err := wasi.RedoFiles(mountsFromJSON(r.j.rec.Mounts), history); err != nil {
		return fmt.Errorf("rank %d: its files cannot be made here: %w", rank, err)
	}
	return nil
}

// chainFiles returns the file deltas of rank's checkpoints in the store
// from the start to epoch, laid end to end in order: what redoes its
// files as of epoch on the mounts as the job found them.
func (r *shareRun) chainFiles(rank int, epoch uint64) ([]byte, error) {
	j := r.j
	infos, err := j.store.Epochs(j.key(rank))
	if err != nil {
		return nil, err
	}
	held := map[uint64]bool{}
	for _, in := range infos {
		held[in.Epoch] = true
	}
	// The chain of deltas back from epoch to the start.
	var chain [][]byte
	for e := epoch; e > 0; {
		if !held[e] {
			return nil, fmt.Errorf("%w: rank %d moves to this host, which does not hold its checkpoint %d: the files it wrote up to epoch %d cannot be made here (the hosts that held it died)",
				ErrDamagedState, rank, e, epoch)
		}
		m, err := j.store.Manifest(j.key(rank), e)
		if err != nil {
			return nil, fmt.Errorf("rank %d: checkpoint %d: %w", rank, e, err)
		}
		rc, _, err := decodeRankCheckpoint(m.Host, rank)
		if err != nil {
			return nil, fmt.Errorf("rank %d: checkpoint %d: %w", rank, e, err)
		}
		files, err := j.store.ReadFiles(m)
		if err != nil {
			return nil, fmt.Errorf("rank %d: checkpoint %d: %w", rank, e, err)
		}
		if rc.FilesBase >= e {
			return nil, fmt.Errorf("%w: rank %d: checkpoint %d goes on from the files of epoch %d", ErrDamagedState, rank, e, rc.FilesBase)
		}
		chain = append(chain, files)
		e = rc.FilesBase
	}
	var out []byte
	for i := len(chain) - 1; i >= 0; i-- {
		out = append(out, chain[i]...)
	}
	return out, nil
}

// restartJournal has rank's file journal start anew at the epoch its
// files were made as of here.
func (r *shareRun) restartJournal(rank int) error {
	js := r.j.journals[rank]
	os.Remove(js.path) // a journal of an earlier stay here is of other files
	os.RemoveAll(js.path + ".trash")
	js.moved = true
	return nil
}

// replicateChain copies rank's checkpoints up to epoch to hosts to, in
// the background: those of a rank that moved here, made on the host it
// ran on, to this host's replica hosts, which held only the epochs after;
// those of a rank that stays here to a replica host of this host new
// since the recovery (its replica host died), which held none. The rank's
// checkpoints here are not reported durable until the copy is done
// (copied), so that an epoch committed since has the rank's whole chain
// on this host's replica hosts: a later death of this host finds it
// there.
func (r *shareRun) replicateChain(rank int, epoch uint64, to []ckpt.HostID) {
	mc := &movedCopy{epoch: epoch, to: to, done: make(chan struct{})}
	r.mu.Lock()
	r.copies[rank] = mc
	r.mu.Unlock()
	go func() {
		defer close(mc.done)
		infos, err := r.j.store.Epochs(r.j.key(rank))
		if err != nil {
			mc.err = fmt.Errorf("its checkpoints up to %d: %w", epoch, err)
			r.j.logf("rank %d: %v", rank, mc.err)
			return
		}
		for _, in := range infos {
			if in.Epoch > epoch {
				break
			}
			for _, h := range to {
				if err := r.s.Replicate(rank, in.Epoch, h); err != nil {
					mc.err = fmt.Errorf("its checkpoint %d: replica to host h%d: %w", in.Epoch, h, err)
					r.j.logf("rank %d: %v", rank, mc.err)
					return
				}
			}
		}
		r.j.logf("rank %d: its checkpoints up to %d are on hosts %v too", rank, epoch, to)
	}()
}

// replicateChains begins the copies of the recovery to epoch: the chains
// of the ranks that moved here to this host's replica hosts, and those of
// the ranks that stay here to the replica hosts new since the recovery
// before.
func (r *shareRun) replicateChains(epoch uint64, ranks, moved []int) {
	r.mu.Lock()
	to := ckpt.ReplicaHosts(r.s.Host, r.part.Live(), r.s.Proto.Replicas)
	var added []ckpt.HostID
	for _, h := range to {
		if !slices.Contains(r.chainTo, h) {
			added = append(added, h)
		}
	}
	r.chainTo = to
	r.mu.Unlock()
	for _, rank := range ranks {
		switch {
		case r.j.states[rank] == nil:
		case slices.Contains(moved, rank):
			r.replicateChain(rank, epoch, to)
		case len(added) > 0:
			r.replicateChain(rank, epoch, added)
		}
	}
}

// movedCopy is a copy of a rank's earlier checkpoints under way.
type movedCopy struct {
	epoch uint64
	to    []ckpt.HostID
	done  chan struct{}
	err   error // once done is closed
}

// copied waits for the copy of rank's earlier checkpoints, if one is
// under way, and returns its error; a failed copy is begun again (for
// the next round). A rollback ends the wait.
func (r *shareRun) copied(rank int) error {
	r.mu.Lock()
	mc, rolled := r.copies[rank], r.rollGen
	r.mu.Unlock()
	if mc == nil {
		return nil
	}
	select {
	case <-mc.done:
	case <-rolled:
		return errors.New("the job rolls back")
	}
	r.mu.Lock()
	again := r.copies[rank] == mc && mc.err != nil
	if r.copies[rank] == mc {
		delete(r.copies, rank)
	}
	r.mu.Unlock()
	if again {
		r.replicateChain(rank, mc.epoch, mc.to)
	}
	return mc.err
}
