package job

import (
	"fmt"
	"sync/atomic"
	"time"

	"github.com/librahost/librahost/ckpt"
	"github.com/librahost/librahost/host"
	"github.com/librahost/librahost/transport"
)

// The source's side of a migration (migrate.go): pre-copy rounds while
// the rank runs, then the rank halted at a capture point, its last state
// written and sent while it stays stopped.

// migPause takes a capture of rank that its migration asked for: a
// pre-copy round's (the rank runs on at once), or the last, after which
// the rank stays stopped here until the core says Drop (host.ErrMoved:
// the worker ends) or GoOn (nil: it runs on). It reports false if the
// capture is not the migration's.
func (r *shareRun) migPause(rank int, c *host.Capture) (bool, error) {
	r.mu.Lock()
	mg := r.migs.out[rank]
	switch {
	case mg == nil || mg.paused:
		r.mu.Unlock()
		return false, nil
	case !mg.halting && !mg.copying:
		mg.chain.note(c, 0)
		r.mu.Unlock()
		return false, nil
	case !mg.halting && r.asked[rank] > r.taken[rank]:
		// A checkpoint is due at this pause: the round takes the next.
		mg.chain.note(c, 0)
		if w := r.j.workers[rank]; w != nil {
			w.RequestCheckpoint()
		}
		r.mu.Unlock()
		return false, nil
	case !mg.halting:
		mg.copying = false
		round, base, to := mg.round, mg.held, mg.to
		mg.size = int64(len(c.Memory))
		mg.chain.note(c, round)
		r.mu.Unlock()
		r.precopy(rank, mg, c, round, base, to)
		return true, nil
	}
	mg.chain.note(c, 0)
	mg.paused, mg.stopped, mg.size = true, c.Paused, int64(len(c.Memory))
	r.part.MigratePaused(rank, time.Now())
	r.pump()
	r.mu.Unlock()
	defer close(mg.gone)
	select {
	case <-mg.final:
	case err := <-mg.end:
		return true, err
	case <-mg.ctx.Done(): // a rollback or the job's end
		return true, nil
	}
	r.mu.Lock()
	w := r.j.workers[rank]
	epoch, base := uint64(mg.round+1), mg.held
	r.mu.Unlock()
	if w == nil {
		r.stateSent(rank, mg, 0, fmt.Errorf("rank %d has no worker here", rank))
	} else {
		changes, held := w.Inbox()
		rc := &rankCheckpoint{Worker: c.Host, Changes: changes, Held: held, Stopped: mg.stopped.UnixNano()}
		// Straight to the worker made ahead at the target if the writes
		// since the round it holds are known (migrate_final.go), else
		// through the stores. Its files go with it (migrate_files.go).
		files, err := r.movingFiles(rank, w)
		var fs *FinalState
		if err == nil {
			fs, err = r.finalState(rank, mg, rc, c, files, base)
		}
		// The target may die or go silent: the rank goes on here once the
		// core says so (GoOn), whether or not the send has returned.
		done := make(chan struct{})
		go func() {
			var n int64
			switch {
			case err != nil:
			case fs != nil:
				if n, err = r.s.Mover.Final(fs, mg.to); err == nil {
					r.j.logf("rank %d: its last state went straight to h%d: %d chunks written since round %d, %s",
						rank, mg.to, len(fs.Chunks), fs.Base, host.FormatBytes(uint64(n)))
				}
				// Else the migration fails and the rank goes on here: its
				// capture's copy-on-write snapshot was copied only where
				// it changed, so it cannot go through the stores now.
			default:
				n, err = r.sendState(rank, mg, rc, c, files, epoch, base)
			}
			r.stateSent(rank, mg, n, err)
			close(done)
		}()
		select {
		case <-done:
		case err := <-mg.end:
			return true, r.left(rank, w, err)
		case <-mg.ctx.Done():
			return true, nil
		}
	}
	select {
	case err := <-mg.end:
		return true, r.left(rank, w, err)
	case <-mg.ctx.Done():
		return true, nil
	}
}

// precopy writes pre-copy round's capture c of the running rank under
// its migration key and sends it to host to in the background, base
// being the newest round to holds; the core is told once it is durable
// there, with the bytes of the chunks that changed since the round
// before.
func (r *shareRun) precopy(rank int, mg *outMig, c *host.Capture, round int, base uint64, to ckpt.HostID) {
	j := r.j
	k := MigrationKey(rank)
	if round == 1 {
		r.waitCleared(rank)
		j.store.DeleteAfter(k, 0)
	}
	rc := rankCheckpoint{Version: rankStateVersion, Run: j.runTag}
	p, err := j.writeKey(k, uint64(round), &rc, nil, c, nil, c.Globals, c.Asyncify)
	taken := time.Now()
	go func() {
		var sent atomic.Int64
		stop := make(chan struct{})
		if err == nil {
			go r.copyProgress(rank, round, p, &sent, stop)
		}
		defer close(stop)
		if err == nil {
			<-p.Done()
			err = p.Err()
		}
		var n, dirty int64
		if err == nil {
			dirty = int64(p.Stats().Changed) * migChunk
			n, err = r.sendTo(k, uint64(round), base, to, &sent)
		}
		r.mu.Lock()
		defer r.mu.Unlock()
		if err != nil {
			j.logf("rank %d: pre-copy round %d to h%d: %v", rank, round, to, err)
			r.part.MigrateFailed(rank, err.Error())
			r.pump()
			return
		}
		mg.sent += n
		mg.rounds++
		if uint64(round) > mg.held {
			mg.held = uint64(round)
			mg.chain.held(round)
		}
		if !mg.last.IsZero() {
			mg.rate = float64(dirty) / taken.Sub(mg.last).Seconds()
		}
		mg.last = taken
		j.logf("rank %d: pre-copy round %d to h%d: %s sent, %s changed since the round before, durable there %v after its capture",
			rank, round, to, host.FormatBytes(uint64(n)), host.FormatBytes(uint64(dirty)), time.Since(taken).Round(100*time.Microsecond))
		r.part.CopyDurable(rank, round, dirty, time.Now())
		r.pump()
	}()
}

// copyProgressEvery is how often a pre-copy round's progress is looked at.
const copyProgressEvery = time.Second

// copyProgress tells the core, until stop is closed, each time pre-copy
// round's capture p has written more here or its transfer has sent more
// (sent): a round of a large guest may take longer than the migration's
// timeout, which is for a round that stands still
// (ckpt.Participant.CopyProgress).
func (r *shareRun) copyProgress(rank, round int, p *ckpt.Pending, sent *atomic.Int64, stop <-chan struct{}) {
	t := time.NewTicker(copyProgressEvery)
	defer t.Stop()
	var last int64
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		done, _ := p.Progress()
		if now := done + sent.Load(); now > last {
			last = now
			r.mu.Lock()
			r.part.CopyProgress(rank, round, time.Now())
			r.mu.Unlock()
		}
	}
}

// migChunk is the chunk size of a share's store (ckpt's default), by
// which a round's changed chunks count its dirty bytes.
const migChunk = 64 << 10

// sendTo sends k's capture of epoch to host to, with the source's
// read-only inputs for it to check.
func (r *shareRun) sendTo(k ckpt.Key, epoch, base uint64, to ckpt.HostID, sent *atomic.Int64) (int64, error) {
	inputs, err := r.s.Mover.Inputs()
	if err != nil {
		return 0, fmt.Errorf("the read-only inputs here cannot be read: %v", err)
	}
	return r.s.Mover.Send(k, epoch, base, to, inputs, sent)
}

// sendEnded sends the state of a rank whose program has ended: its
// channels and exit code.
func (r *shareRun) sendEnded(rank int, mg *outMig) {
	r.mu.Lock()
	code := r.j.codes[rank]
	epoch, base := uint64(mg.round+1), mg.held
	r.mu.Unlock()
	files, err := r.movingFiles(rank, nil)
	var sent int64
	if err == nil {
		sent, err = r.sendState(rank, mg, &rankCheckpoint{Ended: true, Exit: code}, nil, files, epoch, base)
	}
	r.stateSent(rank, mg, sent, err)
}

// stateSent tells the participant that rank's last state is at its
// target, or why not.
func (r *shareRun) stateSent(rank int, mg *outMig, n int64, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	mg.sent += n
	if err != nil {
		r.j.logf("rank %d: its state did not reach h%d: %v", rank, mg.to, err)
		r.part.MigrateFailed(rank, err.Error())
	} else {
		r.part.FinalDurable(rank, time.Now())
	}
	r.pump()
}

// channelState puts the stopped rank's share of the channel state in rc.
func (r *shareRun) channelState(rank int, rc *rankCheckpoint) error {
	r.j.ep.Leave(uint32(rank)) // it acks nothing its state may lack
	cs, err := r.j.ep.Snapshot([]uint32{uint32(rank)})
	if err != nil || len(cs) != 1 {
		return fmt.Errorf("rank %d's channel state could not be taken (%v)", rank, err)
	}
	rc.Version, rc.Comm, rc.Run = rankStateVersion, transport.AppendRankState(nil, &cs[0]), r.j.runTag
	return nil
}

// sendState writes the stopped rank's whole state — rc with its channel
// state, its capture c (nil for a rank that has ended) and its file
// history — under its migration key here at epoch and sends it to the
// target, which holds the key's epoch base; it returns the bytes sent.
func (r *shareRun) sendState(rank int, mg *outMig, rc *rankCheckpoint, c *host.Capture, files []byte, epoch, base uint64) (int64, error) {
	j := r.j
	if err := r.channelState(rank, rc); err != nil {
		return 0, err
	}
	k := MigrationKey(rank)
	if base == 0 {
		r.waitCleared(rank)
		j.store.DeleteAfter(k, 0)
	}
	var globals []uint64
	var async []byte
	if c != nil {
		globals, async = c.Globals, c.Asyncify
	}
	p, err := j.writeKey(k, epoch, rc, nil, c, files, globals, async)
	if err == nil {
		<-p.Done()
		err = p.Err()
	}
	if err != nil {
		return 0, fmt.Errorf("rank %d's state could not be written here: %v", rank, err)
	}
	return r.sendTo(k, epoch, base, mg.to, nil)
}
