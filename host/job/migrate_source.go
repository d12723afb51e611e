package job

import (
	"fmt"
	"time"

	"github.com/librahost/librahost/host"
	"github.com/librahost/librahost/transport"
)

// The source's side of a migration (migrate.go): the rank halted at a
// capture point, its state written and sent while it stays stopped.

// migPause takes a capture of rank that its Halt asked for: the rank
// stays stopped here until its state is at the target and the core says
// Drop (host.ErrMoved: the worker ends) or GoOn (nil: it runs on). It
// reports false if rank is not halting.
func (r *shareRun) migPause(rank int, c *host.Capture) (bool, error) {
	r.mu.Lock()
	mg := r.migs.out[rank]
	if mg == nil || mg.paused {
		r.mu.Unlock()
		return false, nil
	}
	mg.paused, mg.stopped, mg.size = true, c.Paused, int64(len(c.Memory))
	r.part.MigratePaused(rank, time.Now())
	r.pump()
	r.mu.Unlock()
	select {
	case <-mg.final:
	case err := <-mg.end:
		return true, err
	case <-mg.ctx.Done(): // a rollback or the job's end
		return true, nil
	}
	r.mu.Lock()
	w := r.j.workers[rank]
	r.mu.Unlock()
	if w == nil {
		r.stateSent(rank, mg, 0, fmt.Errorf("rank %d has no worker here", rank))
	} else {
		changes, held := w.Inbox()
		rc := &rankCheckpoint{Worker: c.Host, Changes: changes, Held: held}
		// The target may die or go silent: the rank goes on here once the
		// core says so (GoOn), whether or not the send has returned.
		done := make(chan struct{})
		go func() {
			n, err := r.sendState(rank, mg, rc, c)
			r.stateSent(rank, mg, n, err)
			close(done)
		}()
		select {
		case <-done:
		case err := <-mg.end:
			return true, err
		case <-mg.ctx.Done():
			return true, nil
		}
	}
	select {
	case err := <-mg.end:
		return true, err
	case <-mg.ctx.Done():
		return true, nil
	}
}

// sendEnded sends the state of a rank whose program has ended: its
// channels and exit code.
func (r *shareRun) sendEnded(rank int, mg *outMig) {
	r.mu.Lock()
	code := r.j.codes[rank]
	r.mu.Unlock()
	sent, err := r.sendState(rank, mg, &rankCheckpoint{Ended: true, Exit: code}, nil)
	r.stateSent(rank, mg, sent, err)
}

// stateSent tells the participant that rank's last state is at its target, or
// why not.
func (r *shareRun) stateSent(rank int, mg *outMig, n int64, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	mg.sent = n
	if err != nil {
		r.j.logf("rank %d: its state did not reach h%d: %v", rank, mg.to, err)
		r.part.MigrateFailed(rank, err.Error())
	} else {
		r.part.FinalDurable(rank, time.Now())
	}
	r.pump()
}

// sendState writes the stopped rank's whole state — rc with its channel
// state, and its capture c (nil for a rank that has ended) — under its
// migration key here and sends it to the target; it returns the bytes
// sent.
func (r *shareRun) sendState(rank int, mg *outMig, rc *rankCheckpoint, c *host.Capture) (int64, error) {
	j := r.j
	cs, err := j.ep.Snapshot([]uint32{uint32(rank)})
	if err != nil || len(cs) != 1 {
		return 0, fmt.Errorf("rank %d's channel state could not be taken (%v)", rank, err)
	}
	rc.Version, rc.Comm, rc.Run = rankStateVersion, transport.AppendRankState(nil, &cs[0]), j.runTag
	k := MigrationKey(rank)
	j.store.DeleteAfter(k, 0)
	defer j.store.DeleteAfter(k, 0)
	var globals []uint64
	var async []byte
	if c != nil {
		globals, async = c.Globals, c.Asyncify
	}
	p, err := j.writeKey(k, migEpoch, rc, c, nil, globals, async)
	if err == nil {
		<-p.Done()
		err = p.Err()
	}
	if err != nil {
		return 0, fmt.Errorf("rank %d's state could not be written here: %v", rank, err)
	}
	inputs, err := r.s.Mover.Inputs()
	if err != nil {
		return 0, fmt.Errorf("the read-only inputs here cannot be read: %v", err)
	}
	return r.s.Mover.Send(k, migEpoch, mg.to, inputs)
}
