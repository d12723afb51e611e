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
//
// Two rounds may be under way at once (Config.Rounds): a rank that asks
// for a checkpoint itself (the guest's Checkpoint call) while round e is
// still being written begins round e+1 at once instead of waiting for
// e's commit. The cores keep the order: each rank takes e before e+1,
// e+1 commits after e, and a failure of e ends e+1 too. Here each round
// has its own state, cut and waiters, by epoch, and rounds end (their
// lines, the run record) in epoch order.

// defaultRounds is how many checkpoint rounds a job on one host has
// under way at once unless Config.Rounds says otherwise.
const defaultRounds = 2

// roundState is a round under way.
type roundState struct {
	err   error // why the round fails, if it does
	stats roundStats
	began time.Time
	held  time.Duration // the longest a rank was held up by it: the coordinator's, at its commit (pace.go)
}

type roundStats struct {
	mem, hashed, stored uint64
	maxStop             time.Duration // longest a rank stood still for the round
	maxCapture          time.Duration // longest capture (hash and copy) of a rank
	cow                 bool          // a rank's capture was copy-on-write
	maxWrite            time.Duration
}

// protoConfig is the protocol's view of a job on this host alone that
// resumes from committed epoch from (0: none), with rounds under way at
// once.
func protoConfig(n int, from uint64, rounds int) ckpt.ProtoConfig {
	cfg := ckpt.ProtoConfig{Hosts: 1, Place: make([]ckpt.HostID, n), Committed: from, MaxRounds: rounds}
	if from > 0 {
		cfg.Holders = make([][]ckpt.HostID, n)
		for r := range cfg.Holders {
			cfg.Holders[r] = []ckpt.HostID{0}
		}
	}
	return cfg
}

// begin starts a round: every running rank is asked for a checkpoint
// (once it took the rounds before), but paused, the rank whose own
// capture point begins it (-1 if none), which takes it at once. The
// caller holds j.mu. It returns 0 if no round starts: as many as may be
// are under way, the job is failing, not every rank is prepared yet,
// nothing runs, or the final round of a stop has begun (after it the
// ranks leave without another capture point, so a later round could
// never end).
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
	j.rounds[e] = &roundState{began: time.Now()}
	j.cutMu.Lock()
	j.cuts[e] = make([]transport.RankState, j.n)
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
			// One after another: the cut of a rank's next round moves it
			// past this one's.
			prev, done, code := j.endWrites[a.Rank], make(chan struct{}), j.codes[a.Rank]
			j.endWrites[a.Rank] = done
			go func() {
				defer close(done)
				if prev != nil {
					<-prev
				}
				j.writeEnded(a.Rank, a.Epoch, code)
			}()
		} else {
			j.persist[a.Rank] = a.Epoch // onPause writes it
		}
	case ckpt.ActPersistCommit:
		j.part.CommitDurable(a.Epoch) // the coordinator's write, on this host
	case ckpt.ActRelease:
		if j.rounds[a.Epoch] != nil {
			// The senders' logs may drop what the committed cut covers.
			j.cutMu.Lock()
			cut := j.cuts[a.Epoch]
			j.cutMu.Unlock()
			if cut != nil {
				j.ep.StableCut(cut)
			}
			j.endRound(a.Epoch, nil)
		}
	case ckpt.ActAbandon:
		j.dropEpoch(a.Epoch)
	}
}

// coordAction carries out an action of the coordinator.
func (j *jobRun) coordAction(a ckpt.Action) {
	switch a.Kind {
	case ckpt.ActPersistCommit:
		if r := j.rounds[a.Epoch]; r != nil {
			r.held = a.Held
		}
		// Off the job's lock: a rank asking for its next checkpoint
		// meanwhile need not wait for these writes (the coordinator asks
		// for one commit record at a time).
		rec := *j.rec
		rec.Epoch = a.Epoch
		go j.persistCommit(a.Epoch, &rec)
	case ckpt.ActAbandon:
		if r := j.rounds[a.Epoch]; r != nil {
			err := r.err
			if err == nil {
				err = errors.New(a.Err)
			}
			j.endRound(a.Epoch, err)
		}
	}
}

// persistCommit writes the commit record of epoch, then the run record
// rec that names it, and tells the coordinator.
func (j *jobRun) persistCommit(epoch uint64, rec *runRecord) {
	err := j.store.CommitJob(ckpt.Commit{Job: rec.Job, Epoch: epoch, Workers: uint32(j.n)})
	if err == nil {
		j.recMu.Lock()
		if !j.recFinal {
			if werr := writeRecord(j.cfg.StateDir, rec); werr != nil {
				j.logf("warning: %v", werr)
			}
		}
		j.recMu.Unlock()
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.aborted {
		return // no more checkpoints: the job is ending
	}
	if err != nil {
		if r := j.rounds[epoch]; r != nil {
			r.err = err
		}
		j.coord.CommitFailed(epoch)
	} else {
		j.coord.CommitDurable(epoch)
	}
	j.pump()
	j.cond.Broadcast()
}

// dropEpoch drops what ranks wrote of an abandoned epoch: it never
// counts. Only that epoch: a round before it may still be under way.
func (j *jobRun) dropEpoch(epoch uint64) {
	for rank := range j.n {
		j.store.DeleteEpoch(j.key(rank), epoch)
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
		// starts one at once, unless as many as may be are under way
		// (then once the oldest ends).
		switch {
		case j.aborted:
			j.mu.Unlock()
			return nil
		case j.coord.Busy():
			j.cond.Wait()
		case j.begin(rank) == 0:
			j.mu.Unlock()
			return nil
		}
	}
	epoch := j.asked[rank]
	j.taken[rank] = epoch
	if j.rounds[epoch] == nil {
		// Asked by a round that has failed since: the rank, which took
		// every round before it, is in its epoch all the same (messages
		// stamped with it, held for the rank, are its own).
		j.ep.SetEpoch(uint32(rank), epoch)
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
		j.report(rank, epoch, ckpt.Stats{}, 0, 0, err)
	}

	j.mu.Lock()
	defer j.mu.Unlock()
	if j.stopAt != epoch {
		return nil
	}
	// The final checkpoint of a stop: wait for its commit, then end.
	for !j.aborted && j.rounds[epoch] != nil {
		j.cond.Wait()
	}
	if j.stopErr != nil {
		return stopFailed(j.stopErr)
	}
	if j.aborted {
		return stopFailed(errors.New("the " + j.what() + " failed"))
	}
	return ErrStopped
}

// report records that rank's checkpoint of epoch is durable (err nil) or
// failed; the rank stood still for stopped and was held up for held in
// all (pace.go).
func (j *jobRun) report(rank int, epoch uint64, st ckpt.Stats, stopped, held time.Duration, err error) {
	j.observeDurable(rank, epoch, stopped, held, err)
	j.mu.Lock()
	defer j.mu.Unlock()
	r := j.rounds[epoch]
	if r == nil || j.aborted {
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
		j.part.Durable(rank, epoch, ckpt.Hash{}, held)
	}
	j.pump()
}

// endRound ends the round of epoch: committed if err is nil. Commits come
// in epoch order. The caller holds j.mu.
func (j *jobRun) endRound(epoch uint64, err error) {
	r := j.rounds[epoch]
	delete(j.rounds, epoch)
	j.cutMu.Lock()
	for e := range j.cuts {
		if e <= epoch && (err == nil || e == epoch) {
			delete(j.cuts, e)
		}
	}
	j.cutMu.Unlock()
	j.observeEnd(epoch, err)
	if err == nil {
		j.rec.Epoch = epoch // written with the commit record (persistCommit)
		j.store.KeepFrom(j.rec.Job, epoch)
		if j.cfg.Verbose {
			j.logDurable(epoch, r.stats)
		}
		j.paceAfter(epoch, r)
	} else {
		j.logf("checkpoint %d failed: %v", epoch, err)
		j.dropEpoch(epoch)
		// The ranks that had not taken it yet, and took every round
		// before it, are in the epoch all the same: messages stamped
		// with it, held for them, are theirs. One that has an earlier
		// round to take is asked for this one once it took that, and
		// moves on then (onPause).
		for rank, t := range j.taken {
			if t < epoch && !j.roundBefore(t, epoch) {
				j.taken[rank] = epoch
				j.ep.SetEpoch(uint32(rank), epoch)
			}
		}
	}
	res := ckptResult{epoch: epoch, stats: ckpt.Stats{BytesStored: int64(r.stats.stored), PauseDur: r.stats.maxStop}, err: err}
	for _, w := range j.waiters[epoch] {
		w <- res
	}
	delete(j.waiters, epoch)
	if j.stopAt == epoch {
		j.stopErr = err
	}
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

// roundBefore reports whether a round under way lies between epochs
// after and before. The caller holds j.mu.
func (j *jobRun) roundBefore(after, before uint64) bool {
	for e := range j.rounds {
		if e > after && e < before {
			return true
		}
	}
	return false
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
	j.report(rank, e, ckpt.Stats{}, 0, 0, err)
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
	for e, ws := range j.waiters {
		for _, w := range ws {
			w <- ckptResult{epoch: e, err: errors.New("job: the " + j.what() + " is ending")}
		}
		delete(j.waiters, e)
	}
	j.cond.Broadcast()
}

// stop takes a final checkpoint, after which every rank ends: a new
// round's (a rank that took the rounds under way has gone on), once one
// may begin.
func (j *jobRun) stop() {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.stopping = true
	if !j.coord.Busy() {
		j.begin(-1)
	}
}

// requestCheckpoint asks for a job checkpoint (the control socket) and
// reports it once committed or failed: a new round's, or the newest
// under way if no other may begin.
func (j *jobRun) requestCheckpoint() <-chan ckptResult {
	c := make(chan ckptResult, 1)
	j.mu.Lock()
	defer j.mu.Unlock()
	e := uint64(0)
	if !j.coord.Busy() {
		e = j.begin(-1)
	}
	if e == 0 {
		e = j.coord.Round()
	}
	if e == 0 || j.rounds[e] == nil {
		c <- ckptResult{err: errors.New("job: the " + j.what() + " is not running")}
		return c
	}
	j.waiters[e] = append(j.waiters[e], c)
	return c
}

// waitRound waits for the rounds under way to end.
func (j *jobRun) waitRound() {
	j.mu.Lock()
	defer j.mu.Unlock()
	for !j.aborted && j.coord.Rounds() != 0 {
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

// paceAfter spaces the next periodic round after the committed round
// of epoch by what it cost the ranks (pace.go), saying so (-v) when that
// holds the next one back past the interval. The caller holds j.mu.
func (j *jobRun) paceAfter(epoch uint64, r *roundState) {
	who := "the guest"
	if j.n > 1 {
		who = "a worker"
	}
	if line := j.pace.after(epoch, who, r.began, time.Now(), r.held, j.cfg.CheckpointEvery); line != "" && j.cfg.Verbose {
		j.logf("%s", line)
	}
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
