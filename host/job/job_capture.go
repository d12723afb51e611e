package job

import (
	"encoding/json"
	"time"

	"github.com/librahost/librahost/ckpt"
	"github.com/librahost/librahost/host"
	"github.com/librahost/librahost/transport"
)

// captureRank captures a stopped rank's checkpoint of epoch into the
// store: its share of the channel state, then its memory and the rest.
// The write goes on in the background, and is reported.
func (j *jobRun) captureRank(rank int, epoch uint64, c *host.Capture) error {
	comm, err := j.cutRank(rank, epoch)
	if err != nil {
		return err
	}
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
	stopped, taken := time.Since(c.Paused), c.Taken
	go func() {
		j.progress(rank, epoch, p)
		j.logPause(rank, epoch, stopped, taken+p.Stats().PauseDur)
		j.report(rank, epoch, p.Stats(), stopped, p.Err())
	}()
	return nil
}

// writeEnded writes the checkpoint of epoch of a rank whose program had
// ended with code.
func (j *jobRun) writeEnded(rank int, epoch uint64, code int) {
	comm, err := j.cutRank(rank, epoch)
	if err != nil {
		j.report(rank, epoch, ckpt.Stats{}, 0, err)
		return
	}
	rc := rankCheckpoint{Version: rankStateVersion, Ended: true, Exit: code, Comm: transport.AppendRankState(nil, comm), Run: j.runTag}
	p, err := j.write(rank, epoch, &rc, nil, nil, nil, nil)
	if err != nil {
		j.report(rank, epoch, ckpt.Stats{}, 0, err)
		return
	}
	<-p.Done()
	j.report(rank, epoch, p.Stats(), 0, p.Err())
}

// cutRank takes rank's share of the channel state as its cut of epoch,
// and keeps it for the round's release.
func (j *jobRun) cutRank(rank int, epoch uint64) (*transport.RankState, error) {
	cut, err := cutAt(j.ep, []int{rank}, epoch)
	if err != nil {
		return nil, err
	}
	j.mu.Lock()
	if j.round.epoch == epoch {
		j.round.cut[rank] = cut[0]
	}
	j.mu.Unlock()
	return &cut[0], nil
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
	return j.writeKey(j.key(rank), epoch, rc, c, files, globals, async)
}

// writeKey is write under key k.
func (j *jobRun) writeKey(k ckpt.Key, epoch uint64, rc *rankCheckpoint, c *host.Capture, files []byte, globals []uint64, async []byte) (*ckpt.Pending, error) {
	hs, err := json.Marshal(rc)
	if err != nil {
		return nil, err
	}
	var mem []byte
	var written *ckpt.Dirty
	if c != nil {
		mem, written = c.Memory, c.Dirty
	}
	return j.store.Capture(ckpt.Meta{
		Key:      k,
		Epoch:    epoch,
		Binding:  j.bind,
		Globals:  globals,
		Asyncify: async,
		Host:     hs,
		Files:    files,
		Created:  time.Now().UTC(),
		Dirty:    written,
	}, mem)
}
