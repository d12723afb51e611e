package job

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/librahost/librahost/ckpt"
	"github.com/librahost/librahost/host"
	"github.com/librahost/librahost/transport"
)

// A round is one coordinated checkpoint of the job (a job epoch). On one
// host the cut is simple: every rank stops at its next capture point (a
// Go guest anywhere, through its watcher; an asyncify guest at its next
// import; a rank waiting for a message is at one) and waits in OnPause
// until all have; with all stopped nothing is sent or received, so the
// Endpoint's channel state is taken then. Each rank then captures its own
// state and goes on while its checkpoint is written; the epoch is
// committed once every rank's checkpoint is durable. ckpt.Coordinator
// keeps the protocol's state; this file does the waiting and the I/O.

// roundState is the round under way, or the last one ended.
type roundState struct {
	epoch    uint64
	cut      []transport.RankState // once every rank is stopped
	cutErr   error
	reported int // ranks whose checkpoint is durable or failed
	err      error
	stats    roundStats

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

// begin starts a round and asks every running rank for a checkpoint, but
// paused, the rank whose own capture point begins it (-1 if none): asked
// again, it would stop once more as soon as it went on, and wait there
// for the round's write. The caller holds j.mu. It returns 0 if no round can start: the job is
// failing, not every rank is prepared yet, or the final round of a stop
// has begun (after it the ranks leave without another capture point, so a
// later round could never end).
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
	e, ok := j.coord.Begin()
	if !ok {
		return e
	}
	j.round = roundState{epoch: e, lastEpoch: j.round.lastEpoch, lastErr: j.round.lastErr}
	if j.stopping && j.stopAt == 0 {
		j.stopAt = e
	}
	for r, w := range j.workers {
		if w != nil && !j.ended[r] && r != paused {
			w.RequestCheckpoint()
		}
	}
	return e
}

// onPause runs on rank's goroutine when it stopped at a capture point.
func (j *jobRun) onPause(rank int, c *host.Capture) error {
	j.mu.Lock()
	for {
		if j.aborted {
			j.mu.Unlock()
			return nil
		}
		e, cut := j.coord.Round()
		if e == 0 {
			// Not asked by a round (the guest's own Checkpoint call): it
			// starts one.
			if j.begin(rank) == 0 {
				j.mu.Unlock()
				return nil
			}
			continue
		}
		if cut { // this rank is asked again while the last round is written
			j.cond.Wait()
			continue
		}
		break
	}
	epoch := j.round.epoch
	if j.coord.Paused(rank) {
		j.takeCut()
	}
	for !j.aborted && j.round.epoch == epoch && j.round.cut == nil && j.round.cutErr == nil {
		j.cond.Wait()
	}
	if j.aborted || j.round.epoch != epoch || j.round.cutErr != nil {
		j.mu.Unlock()
		return nil
	}
	comm := j.round.cut[rank]
	j.mu.Unlock()

	if err := j.captureRank(rank, epoch, c, &comm); err != nil {
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

// takeCut takes the channel state once every rank is stopped or ended,
// and writes the checkpoints of the ranks whose programs ended. The
// caller holds j.mu.
func (j *jobRun) takeCut() {
	epoch := j.round.epoch
	cut, err := cutAt(j.ep, j.n, epoch)
	if err != nil {
		j.round.cutErr = err
		j.endRound(err)
		return
	}
	j.round.cut = cut
	for r := range j.n {
		if j.ended[r] {
			rc := rankCheckpoint{Version: rankStateVersion, Ended: true, Exit: j.codes[r], Comm: transport.AppendRankState(nil, &cut[r]), Run: j.runTag}
			go func() {
				p, err := j.write(r, epoch, &rc, nil, nil, nil, nil)
				if err != nil {
					j.report(r, epoch, ckpt.Stats{}, 0, err)
					return
				}
				<-p.Done()
				j.report(r, epoch, p.Stats(), 0, p.Err())
			}()
		}
	}
	j.cond.Broadcast()
}

// captureRank captures a stopped rank into the store; the write goes on
// in the background.
func (j *jobRun) captureRank(rank int, epoch uint64, c *host.Capture, comm *transport.RankState) error {
	w := j.workers[rank]
	files, err := w.CheckpointFiles(epoch)
	if err != nil {
		return err
	}
	if infos, err := j.store.Epochs(j.key(rank)); err == nil && len(infos) > 0 {
		w.ReleaseFiles(infos[0].Epoch)
	}
	changes, held := w.Inbox()
	rc := rankCheckpoint{
		Version: rankStateVersion,
		Worker:  c.Host,
		Changes: changes,
		Held:    held,
		Comm:    transport.AppendRankState(nil, comm),
		Run:     j.runTag,
	}
	if o := j.outs[rank][0]; o != nil {
		rc.StdoutTail, rc.MidLine[0] = o.tail(), !o.lineStart
	}
	if o := j.outs[rank][1]; o != nil {
		rc.StderrTail, rc.MidLine[1] = o.tail(), !o.lineStart
	}
	p, err := j.write(rank, epoch, &rc, c, files, c.Globals, c.Asyncify)
	if err != nil {
		return err
	}
	stopped := time.Since(c.Paused)
	go func() {
		j.progress(rank, epoch, p)
		j.report(rank, epoch, p.Stats(), stopped, p.Err())
	}()
	return nil
}

// progress waits for a rank's checkpoint write, with a line a second for
// a long one.
func (j *jobRun) progress(rank int, epoch uint64, p *ckpt.Pending) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-p.Done():
			return
		case <-t.C:
			done, total := p.Progress()
			j.logf("checkpoint %d: %s%s of %s written", epoch, j.who(rank), host.FormatBytes(uint64(done)), host.FormatBytes(uint64(total)))
		}
	}
}

// write hands one rank's checkpoint to the store.
func (j *jobRun) write(rank int, epoch uint64, rc *rankCheckpoint, c *host.Capture, files []byte, globals []uint64, async []byte) (*ckpt.Pending, error) {
	host, err := json.Marshal(rc)
	if err != nil {
		return nil, err
	}
	var mem []byte
	var written *ckpt.Dirty
	if c != nil {
		mem, written = c.Memory, c.Dirty
	}
	return j.store.Capture(ckpt.Meta{
		Key:      j.key(rank),
		Epoch:    epoch,
		Binding:  j.bind,
		Globals:  globals,
		Asyncify: async,
		Host:     host,
		Files:    files,
		Created:  time.Now().UTC(),
		Dirty:    written,
	}, mem)
}

// report records that rank's checkpoint of epoch is durable (err nil) or
// failed; the last report ends the round.
func (j *jobRun) report(rank int, epoch uint64, st ckpt.Stats, stopped time.Duration, err error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	r := &j.round
	if r.epoch != epoch || j.aborted {
		return
	}
	r.reported++
	if err != nil {
		if ferr := j.coord.Failed(rank, epoch, err); ferr != nil && r.err == nil {
			r.err = fmt.Errorf("%s%w", j.who(rank), err)
		}
	} else {
		j.coord.Durable(rank, epoch)
		r.stats.mem += uint64(st.Chunks) * 64 << 10
		r.stats.hashed += uint64(st.Hashed) * 64 << 10
		r.stats.stored += uint64(st.BytesStored)
		r.stats.maxStop = max(r.stats.maxStop, stopped)
		r.stats.maxCapture = max(r.stats.maxCapture, st.PauseDur)
		r.stats.cow = r.stats.cow || st.CopyOnWrite
		r.stats.maxWrite = max(r.stats.maxWrite, st.WriteDur)
	}
	if r.reported == j.n {
		j.endRound(r.err)
	}
}

// endRound ends the round under way: it commits the epoch if err is nil.
// The caller holds j.mu.
func (j *jobRun) endRound(err error) {
	r := &j.round
	epoch := r.epoch
	if err == nil {
		err = j.store.CommitJob(ckpt.Commit{Job: j.rec.Job, Epoch: epoch, Workers: uint32(j.n)})
	}
	if err == nil {
		// The senders' logs may drop what the committed cut covers.
		j.ep.StableCut(r.cut)
		j.rec.Epoch = epoch
		if werr := writeRecord(j.cfg.StateDir, j.rec); werr != nil {
			j.logf("warning: %v", werr)
		}
		if j.cfg.Verbose {
			j.logDurable(epoch, r.stats)
		}
	} else {
		j.logf("checkpoint %d failed: %v", epoch, err)
		// Drop what some ranks wrote of the epoch: it never counts.
		for rank := range j.n {
			j.store.DeleteAfter(j.key(rank), j.coord.Committed())
		}
	}
	j.coord.Done(err == nil)
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
		j.begin(-1) // a stop asked for while this round was written
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
	if j.coord.Ended(rank) {
		j.takeCut()
	}
	j.cond.Broadcast()
}

// onFailed is told that a rank could not take a checkpoint asked for:
// the round fails.
func (j *jobRun) onFailed(rank int, err error) {
	j.mu.Lock()
	e, cut := j.coord.Round()
	if e == 0 {
		j.mu.Unlock()
		return
	}
	if !cut {
		j.round.cutErr = err
		j.endRound(fmt.Errorf("%s%w", j.who(rank), err))
		j.mu.Unlock()
		return
	}
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
	if e, _ := j.coord.Round(); e != 0 {
		j.coord.Done(false)
		for _, w := range j.waiters {
			w <- ckptResult{epoch: e, err: errors.New("job: the " + j.what() + " is ending")}
		}
		j.waiters = nil
	}
	j.cond.Broadcast()
}

// stop takes a final checkpoint, after which every rank ends.
func (j *jobRun) stop() {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.stopping = true
	switch e, cut := j.coord.Round(); {
	case e == 0:
		j.begin(-1)
	case !cut:
		j.stopAt = e
	}
}

// requestCheckpoint asks for a job checkpoint (the control socket) and
// reports it once committed or failed.
func (j *jobRun) requestCheckpoint() <-chan ckptResult {
	c := make(chan ckptResult, 1)
	j.mu.Lock()
	defer j.mu.Unlock()
	if e, _ := j.coord.Round(); e == 0 && j.begin(-1) == 0 {
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
	for !j.aborted {
		if e, _ := j.coord.Round(); e == 0 {
			return
		}
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

// stopFailed is the end of a stop whose final checkpoint failed.
func stopFailed(err error) error {
	return fmt.Errorf("%w (final checkpoint failed: %v)", ErrStopped, err)
}
