package job

import (
	"errors"
	"fmt"
	"time"

	"github.com/librahost/librahost/ckpt"
	"github.com/librahost/librahost/host"
	"github.com/librahost/librahost/transport"
)

// A round is one checkpoint of the job (a job epoch), run by ckpt's
// protocol cores with this host as the job's only one: the coordinator
// (EpochCoordinator) and this host's participant (Participant) exchange
// their messages here, in pump, and this file does their actions' I/O.
//
// A rank does not wait for the others. The MARKER of epoch e asks every
// rank for a checkpoint; each takes it at its next capture point (a Go
// guest anywhere, through its watcher; an asyncify guest at its next
// import; a rank waiting for a message is at one): its own share of the
// Endpoint's channel state, then its memory and the rest, and it goes on
// while the checkpoint is written. From then on its messages carry e, and
// the Endpoint holds a message stamped e back from a rank that has not
// taken its checkpoint of e yet (HoldLaterEpochs), so that no checkpoint
// holds a message its sender's does not show as sent; a message in
// flight at a cut is in its sender's log. Once every rank's checkpoint is
// durable the participant says DONE, the coordinator writes the commit
// record, and the epoch counts: the senders' logs may drop what its
// ranks show delivered.

// roundState is the round under way, or the last one ended.
type roundState struct {
	epoch uint64
	err   error // why the round fails, if it does
	stats roundStats

	// The last round ended: its epoch and error.
	lastEpoch uint64
	lastErr   error
}

type roundStats struct {
	mem, hashed, stored uint64
	maxStop             time.Duration // longest a rank stood still for the round
	maxCapture          time.Duration // longest capture (hash and copy) of a rank
	cow                 bool          // a rank's capture was copy-on-write
	maxWrite            time.Duration
}

// protoConfig is the protocol's view of a job on this host alone that
// resumes from committed epoch from (0: none).
func protoConfig(n int, from uint64) ckpt.ProtoConfig {
	cfg := ckpt.ProtoConfig{Hosts: 1, Place: make([]ckpt.HostID, n), Committed: from}
	if from > 0 {
		cfg.Holders = make([][]ckpt.HostID, n)
		for r := range cfg.Holders {
			cfg.Holders[r] = []ckpt.HostID{0}
		}
	}
	return cfg
}

// begin starts a round: every running rank is asked for a checkpoint,
// but paused, the rank whose own capture point begins it (-1 if none),
// which takes it at once. The caller holds j.mu. It returns 0 if no round
// starts: one is under way, the job is failing, not every rank is
// prepared yet, nothing runs, or the final round of a stop has begun
// (after it the ranks leave without another capture point, so a later
// round could never end).
func (j *jobRun) begin(paused int) uint64 {
	if j.aborted || !j.ready || j.stopAt != 0 {
		return 0
	}
	running := 0
	for r, w := range j.workers {
		if w != nil && !j.ended[r] {
			running++
		}
	}
	if running == 0 {
		return 0
	}
	e := j.coord.Trigger()
	if e == 0 {
		return 0
	}
	j.round = roundState{epoch: e, lastEpoch: j.round.lastEpoch, lastErr: j.round.lastErr}
	j.cutMu.Lock()
	j.cutEpoch, j.cut = e, make([]transport.RankState, j.n)
	j.cutMu.Unlock()
	j.observeBegin(e)
	if j.stopping {
		j.stopAt = e
	}
	j.pauser = paused
	j.pump()
	j.pauser = -1
	return e
}

// pump carries the cores' messages to each other and their actions out,
// until neither has anything more to say. The caller holds j.mu.
func (j *jobRun) pump() {
	if j.pumping {
		return // an action began a round: the loop below carries it out
	}
	j.pumping = true
	defer func() { j.pumping = false }()
	now := time.Now()
	for {
		cr, pr := j.coord.Ready(), j.part.Ready()
		if len(cr.Msgs)+len(cr.Actions)+len(pr.Msgs)+len(pr.Actions) == 0 {
			return
		}
		for _, m := range cr.Msgs {
			j.part.Step(m, now)
		}
		for _, m := range pr.Msgs {
			j.coord.Step(m, now)
		}
		for _, a := range cr.Actions {
			j.coordAction(a)
		}
		for _, a := range pr.Actions {
			j.partAction(a)
		}
	}
}

// partAction carries out an action of this host's participant.
func (j *jobRun) partAction(a ckpt.Action) {
	switch a.Kind {
	case ckpt.ActCapture:
		j.asked[a.Rank] = a.Epoch
		if w := j.workers[a.Rank]; w != nil && a.Rank != j.pauser {
			w.RequestCheckpoint()
		}
	case ckpt.ActPersist:
		if a.Ended {
			go j.writeEnded(a.Rank, a.Epoch, j.codes[a.Rank])
		} else {
			j.persist[a.Rank] = a.Epoch // onPause writes it
		}
	case ckpt.ActPersistCommit:
		j.part.CommitDurable(a.Epoch) // the coordinator's write, on this host
	case ckpt.ActRelease:
		if j.round.epoch == a.Epoch {
			// The senders' logs may drop what the committed cut covers.
			j.cutMu.Lock()
			cut := j.cut
			if j.cutEpoch != a.Epoch {
				cut = nil
			}
			j.cutMu.Unlock()
			if cut != nil {
				j.ep.StableCut(cut)
			}
			j.endRound(nil)
		}
	case ckpt.ActAbandon:
		j.dropUncommitted()
	}
}

// coordAction carries out an action of the coordinator.
func (j *jobRun) coordAction(a ckpt.Action) {
	switch a.Kind {
	case ckpt.ActPersistCommit:
		if err := j.store.CommitJob(ckpt.Commit{Job: j.rec.Job, Epoch: a.Epoch, Workers: uint32(j.n)}); err != nil {
			j.round.err = err
			j.coord.CommitFailed(a.Epoch)
			return
		}
		j.coord.CommitDurable(a.Epoch)
	case ckpt.ActAbandon:
		if j.round.epoch == a.Epoch {
			err := j.round.err
			if err == nil {
				err = errors.New(a.Err)
			}
			j.endRound(err)
		}
	}
}

// dropUncommitted drops what ranks wrote of epochs after the newest
// committed one: they never count.
func (j *jobRun) dropUncommitted() {
	for rank := range j.n {
		j.store.DeleteAfter(j.key(rank), j.coord.Committed())
	}
}

// onPause runs on rank's goroutine when it stopped at a capture point.
func (j *jobRun) onPause(rank int, c *host.Capture) error {
	j.mu.Lock()
	if j.aborted {
		j.mu.Unlock()
		return nil
	}
	for j.asked[rank] <= j.taken[rank] {
		// Not asked by a round (the guest's own Checkpoint call): it
		// starts one, after the one under way (one at a time).
		switch {
		case j.aborted:
			j.mu.Unlock()
			return nil
		case j.coord.Round() != 0:
			j.cond.Wait()
		case j.begin(rank) == 0:
			j.mu.Unlock()
			return nil
		}
	}
	epoch := j.asked[rank]
	j.taken[rank] = epoch
	if epoch != j.round.epoch { // asked by a round that has failed since
		j.mu.Unlock()
		return nil
	}
	j.part.Paused(rank, epoch)
	j.pump()
	write, oldest := j.persist[rank] == epoch, j.oldestKept(rank)
	j.mu.Unlock()
	if !write {
		return nil
	}
	if err := j.captureRank(rank, epoch, c, oldest); err != nil {
		j.report(rank, epoch, ckpt.Stats{}, 0, err)
	}

	j.mu.Lock()
	defer j.mu.Unlock()
	if j.stopAt != epoch {
		return nil
	}
	// The final checkpoint of a stop: wait for its commit, then end.
	for !j.aborted && j.round.lastEpoch != epoch {
		j.cond.Wait()
	}
	if j.round.lastErr != nil {
		return stopFailed(j.round.lastErr)
	}
	if j.aborted {
		return stopFailed(errors.New("the " + j.what() + " failed"))
	}
	return ErrStopped
}

// report records that rank's checkpoint of epoch is durable (err nil) or
// failed.
func (j *jobRun) report(rank int, epoch uint64, st ckpt.Stats, stopped time.Duration, err error) {
	j.observeDurable(rank, epoch, stopped, err)
	j.mu.Lock()
	defer j.mu.Unlock()
	r := &j.round
	if r.epoch != epoch || j.aborted {
		return
	}
	if err != nil {
		if r.err == nil {
			r.err = fmt.Errorf("%s%w", j.who(rank), err)
		}
		j.part.Failed(rank, epoch, err.Error())
	} else {
		r.stats.mem += uint64(st.Chunks) * 64 << 10
		r.stats.hashed += uint64(st.Hashed) * 64 << 10
		r.stats.stored += uint64(st.BytesStored)
		r.stats.maxStop = max(r.stats.maxStop, stopped)
		r.stats.maxCapture = max(r.stats.maxCapture, st.PauseDur)
		r.stats.cow = r.stats.cow || st.CopyOnWrite
		r.stats.maxWrite = max(r.stats.maxWrite, st.WriteDur)
		j.part.Durable(rank, epoch, ckpt.Hash{})
	}
	j.pump()
}

// endRound ends the round under way: committed if err is nil. The caller
// holds j.mu.
func (j *jobRun) endRound(err error) {
	r := &j.round
	epoch := r.epoch
	j.observeEnd(epoch, err)
	if err == nil {
		j.rec.Epoch = epoch
		if werr := writeRecord(j.cfg.StateDir, j.rec); werr != nil {
			j.logf("warning: %v", werr)
		}
		if j.cfg.Verbose {
			j.logDurable(epoch, r.stats)
		}
	} else {
		j.logf("checkpoint %d failed: %v", epoch, err)
		j.dropUncommitted()
		// The ranks that had not taken it yet are in the epoch all the
		// same: messages stamped with it, held for them, are theirs.
		for rank, t := range j.taken {
			if t < epoch {
				j.taken[rank] = epoch
				j.ep.SetEpoch(uint32(rank), epoch)
			}
		}
	}
	res := ckptResult{epoch: epoch, stats: ckpt.Stats{BytesStored: int64(r.stats.stored), PauseDur: r.stats.maxStop}, err: err}
	*r = roundState{lastEpoch: epoch, lastErr: err}
	for _, w := range j.waiters {
		w <- res
	}
	j.waiters = nil
	if err != nil && j.stopAt == epoch {
		j.logf("the final checkpoint failed")
	} else if err == nil && j.stopAt == epoch {
		j.logf("stopped after checkpoint %d; `librahost run --resume --state %s` continues", epoch, j.cfg.StateDir)
	}
	if j.stopping && j.stopAt == 0 {
		j.begin(-1) // a stop asked for while this round was under way
	}
	j.cond.Broadcast()
}

// onExit is told that rank's program ended (or that the rank stopped).
func (j *jobRun) onExit(rank int, code int, err error) {
	if errors.Is(err, ErrStopped) {
		return
	}
	for _, o := range j.outs[rank] {
		if o != nil {
			o.Flush()
		}
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	if err != nil || code != 0 {
		j.abortLocked()
		return
	}
	j.ended[rank], j.codes[rank] = true, code
	j.part.Ended(rank)
	j.pump()
	j.cond.Broadcast()
}

// onFailed is told that a rank could not take a checkpoint asked for:
// the round fails.
func (j *jobRun) onFailed(rank int, err error) {
	j.mu.Lock()
	e := j.asked[rank]
	j.mu.Unlock()
	j.report(rank, e, ckpt.Stats{}, 0, err)
}

func (j *jobRun) abort() {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.abortLocked()
}

// abortLocked stops the checkpoints of a failing job.
func (j *jobRun) abortLocked() {
	if j.aborted {
		return
	}
	j.aborted = true
	if e := j.coord.Round(); e != 0 {
		for _, w := range j.waiters {
			w <- ckptResult{epoch: e, err: errors.New("job: the " + j.what() + " is ending")}
		}
		j.waiters = nil
	}
	j.cond.Broadcast()
}

// stop takes a final checkpoint, after which every rank ends: the next
// round's (a rank that took the round under way has gone on).
func (j *jobRun) stop() {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.stopping = true
	if j.coord.Round() == 0 {
		j.begin(-1)
	}
}

// requestCheckpoint asks for a job checkpoint (the control socket) and
// reports it once committed or failed.
func (j *jobRun) requestCheckpoint() <-chan ckptResult {
	c := make(chan ckptResult, 1)
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.coord.Round() == 0 && j.begin(-1) == 0 {
		c <- ckptResult{err: errors.New("job: the " + j.what() + " is not running")}
		return c
	}
	j.waiters = append(j.waiters, c)
	return c
}

// waitRound waits for the round under way to end.
func (j *jobRun) waitRound() {
	j.mu.Lock()
	defer j.mu.Unlock()
	for !j.aborted && j.coord.Round() != 0 {
		j.cond.Wait()
	}
}

// logDurable says that a round's epoch is durable (-v), naming the
// capture that ran (host.CaptureKind). A job of one says it as a single
// run always did.
func (j *jobRun) logDurable(epoch uint64, st roundStats) {
	workers, capture := "", host.CaptureKind(st.cow)
	if j.n > 1 {
		workers = fmt.Sprintf("%d workers, ", j.n)
		capture += " " + st.maxCapture.Round(time.Microsecond).String()
	}
	j.logf("checkpoint %d durable: %s%s memory (%s hashed), %s written, pause %s (%s), write %s",
		epoch, workers, host.FormatBytes(st.mem), host.FormatBytes(st.hashed), host.FormatBytes(st.stored), st.maxStop.Round(time.Microsecond),
		capture, st.maxWrite.Round(time.Millisecond))
}

// logPause says (-v, a job of several workers) how long rank stood still
// for its checkpoint of epoch, and how long of it was its own capture
// (the worker's snapshot and the store's hash and copy).
func (j *jobRun) logPause(rank int, epoch uint64, stopped, capture time.Duration) {
	if j.cfg.Verbose && j.n > 1 {
		j.logf("checkpoint %d: rank %d pause %s, own capture %s", epoch, rank, stopped.Round(time.Microsecond), capture.Round(time.Microsecond))
	}
}

// stopFailed is the end of a stop whose final checkpoint failed.
func stopFailed(err error) error {
	return fmt.Errorf("%w (final checkpoint failed: %v)", ErrStopped, err)
}
