package job

import (
	"context"
	"slices"
	"time"

	"github.com/librahost/librahost/ckpt"
	"github.com/librahost/librahost/host"
	"github.com/librahost/librahost/transport"
)

// Recovery of a share (ckpt/proto.go): when a host of the job is lost,
// the coordinator's ROLLBACK makes the participant here say Route (the
// new incarnation and placement), then Rollback for each rank that stays
// here and Restore for each rank that moves here from the lost host (its
// replica is in this host's store under the same key), and Drop for a
// rank that leaves. The share then
//
//   - stops every rank of the incarnation left (their checkpoint writes
//     are let finish, and what they wrote past the epoch is dropped);
//   - has the caller close the incarnation's Endpoint and make one of
//     the new incarnation (NewEndpoint), routed by the new placement,
//     and restores it with the channel state of the epoch of every rank
//     placed here: senders resend what their logs hold, receivers drop
//     what they had;
//   - runs the ranks placed here again from the epoch through the resume
//     path of a job on one host (loadRanks, restoreRank): memory, globals,
//     inbox, files rolled back by their journal; a rank whose program had
//     ended at the epoch stays ended;
//   - tells the participant each rank is back (RolledBack) as it is
//     restored, and holds the ranks until the coordinator's RESUME.
//
// Output needs nothing here: each write carries the guest's position in
// its stream (host.GuestWriter), restored with the rank, so the caller
// can say which bytes it sends again.

// recovery is a ROLLBACK being carried out here.
type recovery struct {
	inc     uint64
	place   []ckpt.HostID
	epoch   uint64
	rolling []int         // the ranks placed here, to roll back or restore
	moved   []int         // those of rolling that ran on another host
	held    int           // live ranks of rolling not restored yet
	resumed chan struct{} // closed by RESUME
}

// recoverAction carries out the participant's recovery actions. The
// caller holds r.mu.
func (r *shareRun) recoverAction(a ckpt.Action) {
	switch a.Kind {
	case ckpt.ActRoute:
		r.j.logf("incarnation %d: the job rolls back", a.Inc)
		r.j.observeRoute(a.Inc, a.Place)
		r.rec = &recovery{inc: a.Inc, place: a.Place, resumed: make(chan struct{})}
		r.next = r.rec
		close(r.rollGen)
		r.rollGen = make(chan struct{})
		clear(r.copies) // of the incarnation left
		select {
		case r.rolled <- struct{}{}:
		default:
		}
		if r.cancelRun != nil {
			r.cancelRun()
		}
		r.stopAdopted()
	case ckpt.ActRollback, ckpt.ActRestore:
		r.j.store.KeepFrom(r.j.rec.Job, a.Epoch) // the epoch rolled back to
		if r.rec != nil {
			r.rec.epoch = a.Epoch
			r.rec.rolling = append(r.rec.rolling, a.Rank)
			if a.Kind == ckpt.ActRestore {
				r.rec.moved = append(r.rec.moved, a.Rank)
			}
			r.j.observeRollback(r.rec.inc, a.Epoch, a.Rank, a.Kind == ckpt.ActRestore)
		}
	case ckpt.ActDrop:
		// Every rank here stops at a rollback; this one is not run here
		// again (the placement says so).
	case ckpt.ActResume:
		r.j.observeResume(a.Inc)
		if r.rec != nil {
			close(r.rec.resumed)
			r.rec = nil
		}
		if r.coord != nil && !r.recoverAt.IsZero() {
			r.j.logf("recovered incarnation %d in %d ms", a.Inc, time.Since(r.recoverAt).Milliseconds())
			r.recoverAt = time.Time{}
		}
	}
}

// run runs the share's ranks, one incarnation of the job after another,
// until Stop is closed, ctx ends or the protocol stops the job here.
// Each time the ranks here have all ended, Exited is told.
func (r *shareRun) run(ctx context.Context) (host.RanksResult, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	r.migs.ctx = ctx
	r.start(ctx, cancel)
	if r.s.Live != nil {
		// A resume: the ranks placed here come with the ROLLBACK.
		select {
		case <-r.rolled:
			if err := r.recover(); err != nil {
				return host.RanksResult{}, err
			}
		case <-r.s.Stop:
			return host.RanksResult{}, nil
		case <-ctx.Done():
			return host.RanksResult{}, r.failed()
		}
	}
	for {
		res, err := r.j.run(ctx)
		if ferr := r.failed(); ferr != nil {
			return res, ferr
		}
		if err != nil {
			return res, err
		}
		if r.rolledBack() {
			if err := r.recover(); err != nil {
				return res, err
			}
			continue
		}
		if ctx.Err() != nil {
			return res, nil
		}
		if r.s.Exited != nil {
			r.s.Exited(r.placedHere(res))
		}
		select {
		case <-r.s.Stop:
			return res, nil
		case <-ctx.Done():
			return res, r.failed()
		case <-r.rolled:
			if err := r.recover(); err != nil {
				return res, err
			}
		}
	}
}

// rolledBack reports, once, whether a ROLLBACK stopped the ranks.
func (r *shareRun) rolledBack() bool {
	select {
	case <-r.rolled:
		return true
	default:
		return false
	}
}

// recover makes the share of the newest ROLLBACK's incarnation: the new
// Endpoint, restored, and what the next run of the ranks placed here
// restores. Their run reports each rank back (restored).
func (r *shareRun) recover() error {
	j := r.j
	r.migs.running.Wait() // the ranks adopted here stop too
	r.writes.Wait()       // what the ranks left were writing
	r.mu.Lock()
	rec := r.next
	r.mu.Unlock()
	if rec == nil {
		return nil
	}
	var ranks []int
	for rank, h := range rec.place {
		if h == r.s.Host {
			ranks = append(ranks, rank)
		}
	}
	// What the ranks here wrote past the epoch belongs to the
	// incarnation left.
	for _, rank := range append(ranks, j.ranks...) {
		j.store.DeleteAfter(j.key(rank), rec.epoch)
	}
	ep, err := r.s.NewEndpoint(rec.inc, rec.place)
	if err != nil {
		return err
	}
	j.ep, j.cfg.Endpoint, j.ranks = ep, ep, ranks
	j.comm = nil
	remade := r.remade(rec, ranks)
	if rec.epoch == 0 { // nothing committed: the ranks start over
		j.fresh, j.from = true, 0
		clear(j.mans)
		clear(j.states)
		fresh := make([]transport.RankState, len(ranks))
		for i, rank := range ranks {
			fresh[i] = transport.RankState{Rank: uint32(rank)}
		}
		if err := ep.Restore(fresh); err != nil {
			return err
		}
	} else {
		j.fresh = false
		if err := j.loadRanks(rec.epoch, ranks); err != nil {
			return err
		}
		j.journals = make([]*journalState, j.n)
		for _, rank := range ranks {
			j.journals[rank] = readJournalState(r.journal(rank), len(j.rec.Mounts))
		}
		if len(j.rec.Mounts) > 0 {
			for _, rank := range remade {
				if j.states[rank] == nil {
					continue
				}
				if err := r.moveFiles(rank, rec.epoch); err != nil {
					return err
				}
			}
			if j.writable() {
				r.replicateChains(rec.epoch, ranks, remade)
			}
		}
		if err := ep.Restore(j.comm); err != nil {
			return err
		}
		// The epoch is committed: what its cut shows delivered is
		// stable.
		ep.StableCut(j.comm)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	clear(j.workers)
	r.cutMu.Lock()
	clear(r.cuts)
	r.cutMu.Unlock()
	for _, rank := range ranks {
		st := j.states[rank]
		j.ended[rank], j.codes[rank] = st != nil && st.Ended, 0
		if j.ended[rank] {
			j.codes[rank] = st.Exit
		}
		r.asked[rank], r.taken[rank], r.persist[rank] = rec.epoch, rec.epoch, 0
		r.filesRestart(rank, rec.epoch)
	}
	for _, rank := range rec.rolling {
		if j.ended[rank] {
			r.part.RolledBack(rank, true)
		} else {
			rec.held++
		}
	}
	r.pump()
	return nil
}

// remade returns the ranks placed here whose files the recovery makes
// from their checkpoints: those that ran on another host, and those that
// came here by a migration at or after the epoch, whose journal here
// begins with their files as they stopped at their source, not as of
// the epoch. It forgets where each rank came from.
func (r *shareRun) remade(rec *recovery, ranks []int) []int {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.migs.init()
	out := slices.Clone(rec.moved)
	for _, rank := range ranks {
		if e, ok := r.migs.came[rank]; ok && e >= rec.epoch && !slices.Contains(out, rank) {
			out = append(out, rank)
		}
	}
	clear(r.migs.came)
	return out
}

// restored tells the participant that rank is back at the epoch of the
// recovery under way, if any; the last rank here to be waits for RESUME
// (or a stop) before the ranks run.
func (r *shareRun) restored(rank int) {
	r.mu.Lock()
	rec, ctx := r.rec, r.runCtx
	if rec == nil || r.next != rec {
		r.mu.Unlock()
		return
	}
	r.part.RolledBack(rank, false)
	rec.held--
	last := rec.held == 0
	r.pump()
	r.mu.Unlock()
	if !last {
		return
	}
	select {
	case <-rec.resumed:
	case <-ctx.Done(): // the ranks stop at once
	}
}
