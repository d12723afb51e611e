package job

import (
	"cmp"
	"context"
	"fmt"
	"os"
	"slices"
	"time"

	"github.com/librahost/librahost/ckpt"
	"github.com/librahost/librahost/host"
	"github.com/librahost/librahost/transport"
)

// The target's side of a migration (migrate.go): the rank's state came
// into the share's store under its migration key; Adopt restores it and
// runs it here beside the ranks already running.

// adopt starts rank here from the state received, its newest checkpoint
// being epoch. A state that cannot be restored ends the job here: the
// source has let the rank go. The caller holds r.mu.
func (r *shareRun) adopt(rank int, epoch uint64) {
	j := r.j
	routed := time.Now()
	st := r.migs.staged[rank]
	var final *FinalState
	var finalAt time.Time
	if st != nil {
		final, finalAt = st.final, st.finalAt
		delete(r.migs.staged, rank)
	}
	m, rc, cs, files, err := r.received(rank, final)
	if err == nil {
		err = j.ep.Restore([]transport.RankState{*cs})
	}
	if err != nil || rc.Ended {
		if st != nil {
			go st.drop()
		}
	}
	if err != nil {
		r.fail(fmt.Errorf("job: rank %d moved here but cannot run: %w", rank, err))
		return
	}
	j.ended[rank], j.codes[rank] = rc.Ended, rc.Exit
	r.asked[rank], r.taken[rank], r.persist[rank] = max(r.asked[rank], epoch), epoch, 0
	r.filesMoved(rank, epoch, files)
	if rc.Ended {
		// Its program has ended: its exit was told from its source; its
		// files are made here, for a later checkpoint's history.
		j.store.DeleteAfter(MigrationKey(rank), 0)
		go func() {
			r.waitLeft(rank)
			if err := r.redoFiles(rank, files); err != nil {
				r.mu.Lock()
				r.fail(fmt.Errorf("job: rank %d moved here: %w", rank, err))
				r.mu.Unlock()
			}
		}()
		return
	}
	// Its files are made from its history before it runs, and its
	// journal starts anew at the epoch (migrate_files.go).
	os.Remove(r.journal(rank))
	os.RemoveAll(r.journal(rank) + ".trash")
	ctx, stop := context.WithCancel(r.migs.ctx)
	r.migs.adopted[rank] = adoptedRank{ctx: ctx, stop: stop}
	rc0 := r.stageConfig(rank)
	// The worker made ahead (migrate_stage.go), once the last state is
	// written into it; else it is made now.
	var inPlace func([]byte) error
	// Read lazily where this host can: a state that came through the
	// store with no round written into a worker here (stop-and-copy, or
	// a worker that could not be made ahead).
	lazily := final == nil
	if st != nil {
		rc0.Made = func(int) *host.Worker {
			w, staged, unread := st.take()
			switch {
			case w == nil:
			case final != nil:
				inPlace = func([]byte) error { return nil } // all in
			case unread:
				inPlace = func(mem []byte) error { return j.readDelta(nil, m, mem) }
			default:
				lazily = false
				inPlace = func(mem []byte) error { return j.readDelta(staged, m, mem) }
			}
			return w
		}
	}
	rc0.Prepare = func(rank int, w *host.Worker) error {
		r.mu.Lock()
		j.workers[rank] = w
		if r.asked[rank] > r.taken[rank] || r.migs.out[rank] != nil { // a checkpoint or a move on
			w.RequestCheckpoint()
		}
		r.mu.Unlock()
		r.waitLeft(rank)
		if err := r.redoFiles(rank, files); err != nil {
			return err
		}
		if _, err := w.CheckpointFiles(epoch); err != nil {
			return err
		}
		if final != nil && inPlace == nil {
			return fmt.Errorf("its worker made here ahead, which holds its last state, is gone")
		}
		// The rank runs before a lazily read memory is in; its migration
		// key goes once it is.
		from := memFrom{inPlace: inPlace}
		if lazily {
			if lz := j.lazyAdopted(rank, m, func() { r.clearMigration(rank) }); lz != nil {
				from = memFrom{lazy: lz}
			}
		}
		err := j.restoreStateFrom(rank, w, m, rc, from)
		if lazy, _ := w.LazyRestore(); !lazy || err != nil {
			r.clearMigration(rank)
		}
		if err == nil && rc.Stopped != 0 {
			stopped := time.Unix(0, rc.Stopped)
			took := time.Since(stopped)
			// Where the downtime went: the last state's way here, the
			// coordinator's ROUTE after it, and the restore.
			split := ""
			if final != nil {
				split = fmt.Sprintf("its last state here after %v, ", finalAt.Sub(stopped).Round(100*time.Microsecond))
			}
			j.logf("rank %d runs here: %v after it stopped at its source (%sits route after %v)", rank, took.Round(time.Microsecond),
				split, routed.Sub(stopped).Round(100*time.Microsecond))
			r.mu.Lock()
			a := r.arrival(rc.Stopped)
			a.took = took
			close(a.ran)
			r.mu.Unlock()
		}
		return err
	}
	r.migs.running.Add(1)
	go r.runAdopted(ctx, stop, rank, rc0)
}

// clearMigration drops rank's migration key here in the background (a
// store transaction, with its disk syncs, that the rank need not wait
// for); a move of the rank off this host waits for it (waitCleared).
func (r *shareRun) clearMigration(rank int) {
	done := make(chan struct{})
	r.mu.Lock()
	r.migs.init()
	r.migs.cleared[rank] = done
	r.mu.Unlock()
	go func() {
		defer close(done)
		r.j.store.DeleteAfter(MigrationKey(rank), 0)
	}()
}

// waitCleared waits for clearMigration's drop of rank's migration key.
func (r *shareRun) waitCleared(rank int) {
	r.mu.Lock()
	done := r.migs.cleared[rank]
	r.mu.Unlock()
	if done != nil {
		<-done
	}
}

// received reads and checks the state of rank that came here, with its
// file history: final, if it came straight, else the newest of its
// migration key.
func (r *shareRun) received(rank int, final *FinalState) (*ckpt.Manifest, *rankCheckpoint, *transport.RankState, []byte, error) {
	j := r.j
	if final != nil {
		rc, cs, err := decodeRankCheckpoint(final.Host, rank)
		if err == nil && cs.Rank != uint32(rank) {
			err = fmt.Errorf("its state holds the channels of rank %d", cs.Rank)
		}
		m := &ckpt.Manifest{Meta: ckpt.Meta{Globals: final.Globals, Host: final.Host}, MemSize: final.MemSize, ChunkSize: final.ChunkSize}
		return m, rc, cs, final.Files, err
	}
	// The newest epoch of its key is its last state (the rounds before
	// are its pre-copies). Its chunks were checked as they came
	// (host/replica), and are again as the restore reads them: no read
	// of the whole memory here, where the rank is stopped.
	infos, err := j.store.Epochs(MigrationKey(rank))
	if err == nil && len(infos) == 0 {
		err = fmt.Errorf("%w: no state of it came here", ckpt.ErrNotFound)
	}
	var m *ckpt.Manifest
	if err == nil {
		m, err = j.store.Manifest(MigrationKey(rank), slices.MaxFunc(infos, func(a, b ckpt.Info) int { return cmp.Compare(a.Epoch, b.Epoch) }).Epoch)
	}
	if err == nil && m.Binding != j.bind {
		err = fmt.Errorf("%w: its state was made by another build of the module", ckpt.ErrForeignModule)
	}
	var files []byte
	if err == nil {
		files, err = j.store.ReadFiles(m)
	}
	if err != nil {
		return nil, nil, nil, nil, err
	}
	rc, cs, err := decodeRankCheckpoint(m.Host, rank)
	if err == nil && cs.Rank != uint32(rank) {
		err = fmt.Errorf("its state holds the channels of rank %d", cs.Rank)
	}
	return m, rc, cs, files, err
}

// runAdopted runs an adopted rank until it ends, moves on, or a rollback
// or the job's end stops it; an end of its own is told as the others'.
func (r *shareRun) runAdopted(ctx context.Context, stop context.CancelFunc, rank int, rc host.RanksConfig) {
	defer r.migs.running.Done()
	defer stop()
	res, err := host.RunRanks(ctx, rc)
	r.mu.Lock()
	if ar, ok := r.migs.adopted[rank]; ok && ar.ctx == ctx {
		delete(r.migs.adopted, rank)
	}
	if err != nil && ctx.Err() == nil {
		r.fail(fmt.Errorf("job: rank %d moved here but cannot run: %w", rank, err))
	}
	r.mu.Unlock()
	if err != nil || ctx.Err() != nil {
		return
	}
	if res = r.placedHere(res); len(res.Ranks) > 0 && r.s.Exited != nil {
		r.s.Exited(res)
	}
}

// stopAdopted stops the adopted ranks, as a rollback stops the others,
// and forgets the ranks halted to leave (their runs stop too). The
// caller holds r.mu.
func (r *shareRun) stopAdopted() {
	for _, ar := range r.migs.adopted {
		ar.stop()
	}
	clear(r.migs.out)
	r.dropAllStaged()
}
