package job

import (
	"fmt"
	"time"

	"github.com/librahost/librahost/ckpt"
	"github.com/librahost/librahost/host"
)

// prepare readies rank's worker before any runs: its files rolled back to
// the epoch restored and its state restored, or, for a new run, the start
// marked in its file journal.
func (j *jobRun) prepare(rank int, w *host.Worker) error {
	j.mu.Lock()
	j.workers[rank] = w
	j.prepared++
	if j.prepared == j.live {
		j.ready = true
		if j.stopping {
			j.begin(-1)
		}
	}
	j.mu.Unlock()
	return j.restoreRank(rank, w)
}

// restoreRank returns a rank's worker to the epoch restored: its files
// rolled back and its state restored; for a new run, or a rank started
// over, the start marked in its file journal.
func (j *jobRun) restoreRank(rank int, w *host.Worker) error {
	if j.fresh {
		if _, err := w.CheckpointFiles(0); err != nil {
			return err
		}
	} else if err := j.journals[rank].rollback(w, j.from, j.cfg.Log, j.who(rank)); err != nil {
		return fmt.Errorf("%s%w", j.who(rank), err)
	}
	return j.restoreState(rank, w, j.mans[rank], j.states[rank])
}

// restoreState restores rank's memory, globals, host state, inbox and
// output positions from its checkpoint m with job state rc (nothing if m
// is nil: the rank starts afresh).
func (j *jobRun) restoreState(rank int, w *host.Worker, m *ckpt.Manifest, rc *rankCheckpoint) error {
	return j.restoreStateFrom(rank, w, m, rc, memFrom{})
}

// memFrom says how a restore reads a rank's memory, if not as a resume
// does (lazily if the resume's check made it ready, else whole).
type memFrom struct {
	// inPlace writes m's state into a worker's memory that holds an
	// earlier one (host.Worker.Stage), or nothing of it yet.
	inPlace func(mem []byte) error
	// lazy reads it lazily so.
	lazy *host.LazyMemory
}

// restoreStateFrom is restoreState with the memory read as from says.
func (j *jobRun) restoreStateFrom(rank int, w *host.Worker, m *ckpt.Manifest, rc *rankCheckpoint, from memFrom) error {
	var pos [2]int64
	var tails [2][]byte
	var midLine [2]bool
	if m != nil {
		t0 := time.Now() // with the wait for the filler spawned ahead
		st := &host.State{
			MemSize:    m.MemSize,
			ReadMemory: func(dst []byte) error { return j.store.ReadMemory(m, dst) },
			Globals:    m.Globals,
			Host:       rc.Worker,
		}
		switch {
		case from.inPlace != nil:
			st.InPlace, st.ReadMemory = true, from.inPlace
		case from.lazy != nil:
			st.Lazy = from.lazy
		default:
			st.Lazy = j.lazyState(rank, m)
		}
		err := w.Restore(st)
		if err != nil {
			return fmt.Errorf("%s%w", j.who(rank), err)
		}
		j.logRestore(rank, w, time.Since(t0))
		w.RestoreInbox(rc.Changes, rc.Held)
		pos[0], pos[1] = rc.positions()
		tails = [2][]byte{rc.StdoutTail, rc.StderrTail}
		midLine = rc.MidLine
	}
	for s, o := range j.outs[rank] {
		if o == nil {
			continue
		}
		if lost := o.restore(pos[s], tails[s], midLine[s]); lost > 0 {
			j.logf("warning: %s%d bytes of output were lost (the output ledger does not match the checkpoints)", j.who(rank), lost)
		}
	}
	return nil
}

// triggers starts periodic checkpoints.
func (j *jobRun) triggers(done <-chan struct{}) {
	periodically(j.cfg.CheckpointEvery, done, func() { j.tick(true) })
}

// tick begins a checkpoint unless a round is under way: it would pause
// the ranks again as soon as they go on. A periodic one also waits until
// the pacer lets it (pace.go).
func (j *jobRun) tick(periodic bool) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.coord.Round() == 0 && (!periodic || j.pace.due(time.Now())) {
		j.begin(-1)
	}
}

// periodically calls f every d (if d > 0) until done is closed.
func periodically(d time.Duration, done <-chan struct{}, f func()) {
	if d <= 0 {
		return
	}
	t := time.NewTicker(d)
	defer t.Stop()
	for {
		select {
		case <-done:
			return
		case <-t.C:
			f()
		}
	}
}
