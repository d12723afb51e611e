package job

import (
	"cmp"
	"context"
	"errors"
	"path/filepath"
	"strconv"
	"time"

	"github.com/zeebo/xxh3"

	"github.com/librahost/librahost/ckpt"
	"github.com/librahost/librahost/host"
	"github.com/librahost/librahost/transport"
)

// A share's checkpoint of epoch e (ckpt/proto.go): the coordinator's
// MARKER asks each rank here for a checkpoint (Capture); a rank takes it
// at its next capture point, or before it is given a message stamped e
// (the Endpoint holds such messages back and says so: EpochAhead). It
// takes its own share of the channel state, then its memory and the
// rest, and goes on while the checkpoint is written here and then
// replicated to the hosts ckpt.ReplicaHosts names. The participant says
// DONE once for all the ranks here; the coordinator writes the commit
// record and sends COMMIT; each host writes it too, and the messages the
// epoch's checkpoints show delivered become stable (Endpoint.StableCut),
// which the links' acks carry to their senders.

// start runs the share's protocol beside its ranks until s.Stop closes:
// the control messages and timers. cancel ends the job here.
func (r *shareRun) start(ctx context.Context, cancel func()) {
	r.fail = func(err error) {
		if r.err == nil {
			r.err = err
		}
		cancel()
	}
	now := time.Now()
	r.part.Start(now)
	if r.coord != nil {
		r.coord.Start(now)
	}
	r.s.run.Store(r)
	if r.coord != nil && r.s.Live != nil {
		// A resume: every live host rolls back to the committed epoch.
		r.mu.Lock()
		r.coord.Resume(r.s.Live, now)
		r.pump()
		r.mu.Unlock()
	}
	go r.loop(ctx)
}

// hook gives the ranks of one incarnation the share's hooks; cancel
// stops them, at a rollback.
func (r *shareRun) hook(ctx context.Context, cancel func(), rc *host.RanksConfig) {
	r.mu.Lock()
	r.cancelRun, r.runCtx = cancel, ctx
	if len(r.rolled) > 0 { // a rollback came before these ranks began
		cancel()
	}
	r.mu.Unlock()
	rc.Journal = r.journal
	rc.Prepare = r.prepare
	rc.OnPause = r.onPause
	rc.OnCheckpointFailed = r.onFailed
	rc.OnExit = r.onExit
	r.migs.rc = *rc
}

// stallAfter is the gap between two ticks that says this host itself
// did not run: half the failure timeout, far above the tick.
func (r *shareRun) stallAfter() time.Duration {
	return cmp.Or(r.s.Proto.FailureTimeout, ckpt.DefaultFailureTimeout) / 2
}

// heardAll counts every host of the job as heard at now.
func (r *shareRun) heardAll(now time.Time) {
	r.part.Heard(now)
	if r.coord != nil {
		for h := range r.s.Proto.Hosts {
			r.coord.Heard(ckpt.HostID(h), now)
		}
	}
}

// journal is the path of rank's file journal here.
func (r *shareRun) journal(rank int) string {
	return filepath.Join(r.s.Dir, journalFile+"."+strconv.Itoa(rank))
}

// loop feeds the cores what arrives and the time.
func (r *shareRun) loop(ctx context.Context) {
	defer func() {
		// What this host's share of the protocol cost (tests read it),
		// however the share ended: its Stop, or its control links
		// closing first when the job ends everywhere at once.
		r.mu.Lock()
		r.j.logf("control messages: %d sent, %d received, %d rounds", r.sent, r.recvd, r.rounds)
		r.mu.Unlock()
	}()
	tick := time.NewTicker(r.s.Tick)
	defer tick.Stop()
	var every <-chan time.Time
	if r.coord != nil && r.s.Every > 0 {
		t := time.NewTicker(r.s.Every)
		defer t.Stop()
		every = t.C
	}
	recv := r.s.Control.Recv()
	done := ctx.Done()
	var lastTick time.Time
	for {
		select {
		case m, ok := <-recv:
			if !ok {
				return
			}
			r.mu.Lock()
			switch {
			case m.Msg.Kind.ToCoordinator():
				if m.Msg.Kind == ckpt.MsgMoved {
					r.noteMoved(m.Msg)
				}
				if r.coord != nil {
					r.coord.Step(m.Msg, m.At)
				}
			default:
				r.recvd++
				r.j.observeControl(0, 1)
				if m.Msg.Kind == ckpt.MsgMarker {
					r.rounds++
				}
				r.part.Step(m.Msg, m.At)
			}
			r.pump()
			r.mu.Unlock()
		case now := <-tick.C:
			r.mu.Lock()
			if stalled := !lastTick.IsZero() && now.Sub(lastTick) > r.stallAfter(); stalled {
				// This host did not run (a frozen machine or process):
				// the others' silence meanwhile says nothing about them.
				// They count as heard now; a host declared lost
				// meanwhile hears so from its coordinator.
				r.heardAll(now)
			}
			lastTick = now
			if r.coord != nil {
				r.s.Control.TellCoordinator(r.coord)
				r.coord.Tick(now)
			}
			r.s.Control.TellParticipant(r.part)
			r.part.Tick(now)
			r.pump()
			r.mu.Unlock()
		case now := <-every:
			r.mu.Lock()
			if r.pace.due(now) {
				r.trigger()
				r.pump()
			}
			r.mu.Unlock()
		case <-r.s.Stop:
			r.end(errors.New("job: the job has ended"))
			return
		case <-done:
			// The ranks here have ended: the share goes on answering the
			// other hosts until Stop.
			if r.s.Stop == nil {
				r.end(context.Cause(ctx))
				return
			}
			done = nil
		}
	}
}

// paceAfter spaces the coordinator's next periodic round after the
// committed round of epoch, begun at began, by the longest any rank was
// held up by it (pace.go), saying so when that holds the next one back
// past the interval. The caller holds r.mu.
func (r *shareRun) paceAfter(epoch uint64, began time.Time, held time.Duration) {
	if line := r.pace.after(epoch, "a rank", began, time.Now(), held, r.s.Every); line != "" {
		r.j.logf("%s", line)
	}
}

// failed returns why the protocol stopped the job here, if it did.
func (r *shareRun) failed() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.err
}

// end stops the share's rounds; those asked for fail with err.
func (r *shareRun) end(err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.stopped = true
	for e, ws := range r.waiters {
		for _, w := range ws {
			w <- err
		}
		delete(r.waiters, e)
	}
}

// pump sends the cores' messages and carries out their actions. The
// caller holds r.mu.
func (r *shareRun) pump() {
	for !r.stopped {
		var cr ckpt.Ready
		if r.coord != nil {
			cr = r.coord.Ready()
		}
		pr := r.part.Ready()
		if len(cr.Msgs)+len(cr.Actions)+len(pr.Msgs)+len(pr.Actions) == 0 {
			return
		}
		r.sent += len(pr.Msgs)
		r.j.observeControl(len(pr.Msgs), 0)
		for _, m := range append(cr.Msgs, pr.Msgs...) {
			if m.Kind == ckpt.MsgMoved {
				m.Err = r.movedStats(m.Rank)
			}
			if err := r.s.Control.Send(m.To, m); err != nil {
				r.j.logf("%v", err)
			}
		}
		for _, a := range cr.Actions {
			r.coordAction(a)
		}
		for _, a := range pr.Actions {
			r.partAction(a)
		}
		if r.coord != nil {
			r.s.Control.SetInc(r.coord.Inc())
		}
		r.s.Control.SetInc(r.part.Inc())
	}
}

// partAction carries out an action of this host's participant. The
// caller holds r.mu.
func (r *shareRun) partAction(a ckpt.Action) {
	j := r.j
	if r.migAction(a) {
		return
	}
	switch a.Kind {
	case ckpt.ActCapture:
		j.observeBegin(a.Epoch)
		r.asked[a.Rank] = max(r.asked[a.Rank], a.Epoch)
		if w := j.workers[a.Rank]; w != nil {
			w.RequestCheckpoint()
		}
	case ckpt.ActPersist:
		if a.Ended {
			// One after another: the cut of a rank's next round moves it
			// past this one's.
			prev, done := r.endWrites[a.Rank], make(chan struct{})
			r.endWrites[a.Rank] = done
			r.writes.Add(1)
			go func() {
				defer r.writes.Done()
				defer close(done)
				if prev != nil {
					<-prev
				}
				r.writeEnded(a.Rank, a.Epoch)
			}()
		} else {
			r.persist[a.Rank] = a.Epoch // onPause writes it
		}
	case ckpt.ActReplicate:
		// One after another to each host: a rank's replica of its next
		// round goes once this one's is there.
		k := [2]int{a.Rank, int(a.Host)}
		prev, done := r.repChains[k], make(chan struct{})
		r.repChains[k] = done
		go func() {
			defer close(done)
			if prev != nil {
				<-prev
			}
			err := r.s.Replicate(a.Rank, a.Epoch, a.Host)
			r.mu.Lock()
			defer r.mu.Unlock()
			if err != nil {
				j.logf("checkpoint %d: rank %d: replica to host h%d: %v", a.Epoch, a.Rank, a.Host, err)
				r.part.Failed(a.Rank, a.Epoch, err.Error())
			} else {
				r.part.Replicated(a.Rank, a.Epoch, a.Host)
			}
			r.pump()
		}()
	case ckpt.ActPersistCommit:
		r.persistCommit(a.Record, func(err error) {
			if err != nil {
				j.logf("checkpoint %d: its commit record could not be written here: %v", a.Epoch, err)
				return
			}
			j.observeEnd(a.Epoch, nil) // before the line, which tests wait for
			j.logf("epoch %d committed", a.Epoch)
			r.part.CommitDurable(a.Epoch)
		})
	case ckpt.ActRelease:
		// The store keeps the epoch, its checkpoints and the replicas
		// here, whatever rounds after it hold (ckpt.Store.KeepFrom).
		j.store.KeepFrom(j.rec.Job, a.Epoch)
		r.filesCommitted(a.Epoch)
		// The senders' logs may drop what the committed cut covers.
		r.cutMu.Lock()
		cut := r.cuts[a.Epoch]
		for e := range r.cuts {
			if e <= a.Epoch {
				delete(r.cuts, e)
			}
		}
		r.cutMu.Unlock()
		if cut != nil {
			j.ep.StableCut(cut)
		}
	case ckpt.ActAbandon:
		j.observeEnd(a.Epoch, errors.New(cmp.Or(a.Err, "the checkpoint was abandoned")))
		r.cutMu.Lock()
		delete(r.cuts, a.Epoch)
		r.cutMu.Unlock()
		// That epoch only: a round before it may still be under way.
		for _, rank := range j.ranks {
			j.store.DeleteEpoch(j.key(rank), a.Epoch)
		}
	case ckpt.ActStop:
		r.stopped = true
		if a.Lost {
			r.fail(lostError{a.Err})
			break
		}
		r.fail(keptError{a.Err})
	case ckpt.ActRoute, ckpt.ActRollback, ckpt.ActRestore, ckpt.ActDrop, ckpt.ActResume:
		r.recoverAction(a) // share_recover.go
	}
}

// coordAction carries out an action of the coordinator. The caller holds
// r.mu.
func (r *shareRun) coordAction(a ckpt.Action) {
	j := r.j
	switch a.Kind {
	case ckpt.ActPersistCommit:
		r.persistCommit(a.Record, func(err error) {
			if err != nil {
				j.logf("checkpoint %d: its commit record could not be written: %v", a.Epoch, err)
				r.coord.CommitFailed(a.Epoch)
			} else {
				r.coord.CommitDurable(a.Epoch)
				r.answer(a.Epoch, nil)
				if t, ok := r.triggered[a.Epoch]; ok {
					j.logf("checkpoint %d: %v from trigger to commit", a.Epoch, time.Since(t).Round(time.Millisecond))
					r.paceAfter(a.Epoch, t, a.Held)
				}
			}
			for e := range r.triggered {
				if e <= a.Epoch {
					delete(r.triggered, e)
				}
			}
		})
	case ckpt.ActAbandon:
		j.logf("checkpoint %d abandoned: %s", a.Epoch, a.Err)
		r.answer(a.Epoch, errors.New(a.Err))
	case ckpt.ActMigrated, ckpt.ActDrained:
		r.coordMigAction(a)
	case ckpt.ActRecover:
		if r.recoverAt.IsZero() {
			r.recoverAt = time.Now()
		}
		j.logf("host h%d lost: incarnation %d rolls back to epoch %d", a.Host, a.Inc, a.Epoch)
		j.observeLost(a.Inc, a.Host, a.Epoch)
	}
}

// persistCommit writes rec in the background, then calls done with r.mu
// held and carries out what follows.
func (r *shareRun) persistCommit(rec *ckpt.CommitRecord, done func(error)) {
	go func() {
		err := r.s.PersistCommit(rec)
		r.mu.Lock()
		defer r.mu.Unlock()
		done(err)
		r.pump()
	}()
}

// trigger begins a round if one may begin (fewer than the job's
// MaxRounds are under way), and notes when. The caller holds r.mu.
func (r *shareRun) trigger() uint64 {
	e := r.coord.Trigger()
	if e != 0 {
		r.triggered[e] = time.Now()
	}
	return e
}

// answer tells those who asked for epoch's checkpoint how it ended.
func (r *shareRun) answer(epoch uint64, err error) {
	for _, w := range r.waiters[epoch] {
		w <- err
	}
	delete(r.waiters, epoch)
}

// checkpoint begins a round at once (or joins the newest under way, if
// no other may begin) and waits for its commit.
func (r *shareRun) checkpoint() (uint64, error) {
	r.mu.Lock()
	if r.coord == nil {
		r.mu.Unlock()
		return 0, errNotCoordinator
	}
	if r.stopped {
		r.mu.Unlock()
		return 0, errors.New("job: the job is not running")
	}
	e := r.trigger()
	if e == 0 {
		e = r.coord.Round()
	}
	if e == 0 {
		r.mu.Unlock()
		return 0, errors.New("job: the job is recovering or stopping: no checkpoint now")
	}
	c := make(chan error, 1)
	r.waiters[e] = append(r.waiters[e], c)
	r.pump()
	r.mu.Unlock()
	return e, <-c
}

// errNotCoordinator: a checkpoint asked for on a host that does not run
// the job's coordinator.
var errNotCoordinator = errors.New("job: this host does not run the job's coordinator")

// IsNotCoordinator reports whether err says that the host asked for a
// checkpoint does not run the job's coordinator (ask another).
func IsNotCoordinator(err error) bool { return errors.Is(err, errNotCoordinator) }

// ahead asks rank for its checkpoint of epoch before it is given a
// message stamped with it.
func (r *shareRun) ahead(rank int, epoch uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if epoch > r.asked[rank] {
		r.asked[rank] = epoch
		if w := r.j.workers[rank]; w != nil {
			w.RequestCheckpoint()
		}
	}
}

// prepare keeps rank's worker and returns it to the epoch the share
// runs from (the start, or a recovery's); a checkpoint asked for before
// it was made is asked for now.
func (r *shareRun) prepare(rank int, w *host.Worker) error {
	r.mu.Lock()
	r.j.workers[rank] = w
	if r.asked[rank] > r.taken[rank] {
		w.RequestCheckpoint()
	}
	r.mu.Unlock()
	if err := r.j.restoreRank(rank, w); err != nil {
		return err
	}
	r.restored(rank)
	return nil
}

// onPause runs on rank's goroutine when it stopped at a capture point:
// it takes the rank's checkpoint of the oldest round here it has not
// taken, up to the newest epoch asked for (rounds are taken in epoch
// order); a later one asked for is taken at its next capture point.
func (r *shareRun) onPause(rank int, c *host.Capture) error {
	if halted, err := r.migPause(rank, c); halted {
		return err
	}
	r.mu.Lock()
	e := r.asked[rank]
	if r.stopped || e <= r.taken[rank] {
		// The guest's own checkpoint call: a job over several hosts
		// takes its checkpoints when its coordinator says.
		r.mu.Unlock()
		return nil
	}
	r.part.Paused(rank, e)
	r.pump()
	if t := r.persist[rank]; t > r.taken[rank] {
		// The core had it take t: e, or a round before it.
		r.taken[rank], e = t, t
		if r.asked[rank] > t {
			if w := r.j.workers[rank]; w != nil {
				w.RequestCheckpoint()
			}
		}
	} else {
		if r.part.Waits(rank, e) {
			// e may still begin here (its MARKER, or the one before, is
			// on its way): the MARKER asks again.
			r.mu.Unlock()
			return nil
		}
		// Its round here was left: the rank goes on in e all the same,
		// so that messages stamped e reach it.
		r.taken[rank] = e
		r.mu.Unlock()
		r.setEpoch(rank, e)
		return nil
	}
	r.mu.Unlock()
	w := r.j.workers[rank]
	waited := w.CaptureWaits()
	p, err := r.captureShare(rank, e, c)
	if err != nil {
		r.report(rank, e, 0, 0, err)
		return nil
	}
	stopped, taken := time.Since(c.Paused), c.Taken
	r.writes.Add(1)
	go func() {
		defer r.writes.Done()
		<-p.Done()
		r.j.logPause(rank, e, stopped, taken+p.Stats().PauseDur)
		r.report(rank, e, stopped, stopped+w.CaptureWaits()-waited, p.Err())
	}()
	return nil
}

// setEpoch moves a rank that takes no checkpoint of e (its round here
// was left) on to e, so that messages held for it go through.
func (r *shareRun) setEpoch(rank int, e uint64) {
	r.j.ep.SetEpoch(uint32(rank), e)
}

// cut takes rank's share of the channel state as its cut of epoch, and
// keeps it for the epoch's release; messages it sends from now on carry
// epoch.
func (r *shareRun) cut(rank int, epoch uint64) *transport.RankState {
	cut, err := r.j.ep.SnapshotAt([]uint32{uint32(rank)}, epoch)
	r.j.ep.SetEpoch(uint32(rank), epoch)
	if err != nil || len(cut) != 1 {
		return nil
	}
	st := cut[0]
	st.Epoch = epoch
	r.keepCut(epoch, st)
	return &st
}

// keepCut keeps a rank's cut of epoch for the epoch's release. The store
// calls it while it writes the rank's checkpoint: it takes cutMu only.
func (r *shareRun) keepCut(epoch uint64, st transport.RankState) {
	r.cutMu.Lock()
	r.cuts[epoch] = append(r.cuts[epoch], st)
	r.cutMu.Unlock()
}

// captureShare writes a stopped rank's checkpoint; the write goes on in
// the background. Its share of the channel state is completed by the
// Endpoint's loop after the rank went on (takeCut).
func (r *shareRun) captureShare(rank int, epoch uint64, c *host.Capture) (*ckpt.Pending, error) {
	cut, err := takeCut(r.j.ep, rank, epoch)
	if err != nil {
		return nil, errors.New("its channel state could not be taken: " + err.Error())
	}
	w := r.j.workers[rank]
	files, err := w.CheckpointFiles(epoch)
	if err != nil {
		return nil, err
	}
	changes, held := w.Inbox()
	files, base := r.filesOf(rank, epoch, files)
	rc := rankCheckpoint{Version: rankStateVersion, Worker: c.Host, Changes: changes, Held: held,
		Run: r.j.runTag, FilesBase: base}
	later := withCut(&rc, cut, func(st transport.RankState) { r.keepCut(epoch, st) })
	return r.j.writeKey(r.j.key(rank), epoch, nil, later, c, files, c.Globals, c.Asyncify)
}

// writeEnded writes the checkpoint of epoch of a rank whose program has
// ended.
func (r *shareRun) writeEnded(rank int, epoch uint64) {
	comm := r.cut(rank, epoch)
	if comm == nil {
		r.report(rank, epoch, 0, 0, errors.New("its channel state could not be taken"))
		return
	}
	r.mu.Lock()
	code := r.j.codes[rank]
	files := r.endFiles[rank] // what it wrote after its last checkpoint
	delete(r.endFiles, rank)
	r.mu.Unlock()
	files, base := r.filesOf(rank, epoch, files)
	rc := rankCheckpoint{Version: rankStateVersion, Ended: true, Exit: code, Comm: transport.AppendRankState(nil, comm), Run: r.j.runTag,
		FilesBase: base}
	p, err := r.j.write(rank, epoch, &rc, nil, files, nil, nil)
	if err == nil {
		<-p.Done()
		err = p.Err()
	}
	r.report(rank, epoch, 0, 0, err)
}

// report tells the participant that rank's checkpoint of epoch is durable
// here (err nil), with its manifest's digest, or failed; the rank stood
// still for stopped and was held up for held (0: not known).
func (r *shareRun) report(rank int, epoch uint64, stopped, held time.Duration, err error) {
	if err == nil {
		err = r.copied(rank)
	}
	r.j.observeDurable(rank, epoch, stopped, held, err)
	var digest ckpt.Hash
	if err == nil {
		var rep *ckpt.Replica
		if rep, err = r.j.store.ReplicaOf(r.j.key(rank), epoch); err == nil {
			digest = xxh3.Hash128(rep.Manifest).Bytes()
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if err != nil {
		r.j.logf("checkpoint %d: rank %d: %v", epoch, rank, err)
		r.part.Failed(rank, epoch, err.Error())
	} else {
		r.part.Durable(rank, epoch, digest, held)
	}
	r.pump()
}

// onFailed is told that a rank could not take a checkpoint asked for.
func (r *shareRun) onFailed(rank int, err error) {
	r.mu.Lock()
	e := r.asked[rank]
	r.mu.Unlock()
	r.report(rank, e, 0, 0, err)
}

// onExit is told that rank's program ended.
func (r *shareRun) onExit(rank int, code int, err error) {
	if err != nil || code != 0 {
		return
	}
	if r.j.writable() {
		// The files it wrote since its last checkpoint go in its first
		// checkpoint as ended, so that its files can be made again
		// on another host (moveFiles).
		r.mu.Lock()
		seal, w := max(r.asked[rank], r.taken[rank])+1, r.j.workers[rank]
		r.mu.Unlock()
		if files, err := w.CheckpointFiles(seal); err != nil {
			r.j.logf("rank %d: its files since its last checkpoint cannot be kept: %v", rank, err)
		} else {
			r.mu.Lock()
			r.endFiles[rank] = files
			r.mu.Unlock()
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.j.ended[rank], r.j.codes[rank] = true, code
	r.part.Ended(rank)
	r.pump()
}
