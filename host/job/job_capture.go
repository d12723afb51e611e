package job

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/librahost/librahost/ckpt"
	"github.com/librahost/librahost/host"
	"github.com/librahost/librahost/transport"
)

// captureRank captures a stopped rank's checkpoint of epoch into the
// store: its memory and the rest, and its share of the channel state,
// which the Endpoint's loop completes after the rank went on (takeCut).
// The write goes on in the background, and is reported. oldest is
// oldestKept(rank).
func (j *jobRun) captureRank(rank int, epoch uint64, c *host.Capture, oldest uint64) error {
	cut, err := takeCut(j.ep, rank, epoch)
	if err != nil {
		return err
	}
	w := j.workers[rank]
	files, err := w.CheckpointFiles(epoch)
	if err != nil {
		return err
	}
	if oldest > 0 {
		w.ReleaseFiles(oldest)
	}
	changes, held := w.Inbox()
	rc := rankCheckpoint{
		Version: rankStateVersion,
		Worker:  c.Host,
		Changes: changes,
		Held:    held,
		Run:     j.runTag,
	}
	if o := j.outs[rank][0]; o != nil {
		rc.StdoutTail, rc.MidLine[0] = o.tail(), !o.lineStart
	}
	if o := j.outs[rank][1]; o != nil {
		rc.StderrTail, rc.MidLine[1] = o.tail(), !o.lineStart
	}
	later := withCut(&rc, cut, func(st transport.RankState) { j.keepCut(rank, epoch, st) })
	waited := w.CaptureWaits()
	p, err := j.writeKey(j.key(rank), epoch, nil, later, c, files, c.Globals, c.Asyncify)
	if err != nil {
		return err
	}
	stopped, taken := time.Since(c.Paused), c.Taken
	go func() {
		j.progress(rank, epoch, p)
		j.logPause(rank, epoch, stopped, taken+p.Stats().PauseDur)
		if p.Err() == nil {
			j.noteKept(rank)
		}
		j.report(rank, epoch, p.Stats(), stopped, stopped+w.CaptureWaits()-waited, p.Err())
	}()
	return nil
}

// withCut returns the encoding of rc with the channel state cut gives,
// which keep is told first, for ckpt.Meta.HostLater.
func withCut(rc *rankCheckpoint, cut func() (transport.RankState, error), keep func(transport.RankState)) func() ([]byte, error) {
	return func() ([]byte, error) {
		comm, err := cut()
		if err != nil {
			return nil, fmt.Errorf("its channel state: %w", err)
		}
		keep(comm)
		rc.Comm = transport.AppendRankState(nil, &comm)
		return json.Marshal(rc)
	}
}

// oldestKept is the oldest checkpoint of rank the store kept after its
// last durable one here (0: none known), which its file undo data need not
// go back past. It is read after each write rather than in the pause. The
// caller holds j.mu.
func (j *jobRun) oldestKept(rank int) uint64 {
	if rank < len(j.kept) {
		return j.kept[rank]
	}
	return 0
}

// noteKept reads the oldest checkpoint of rank the store keeps.
func (j *jobRun) noteKept(rank int) {
	infos, err := j.store.Epochs(j.key(rank))
	if err != nil || len(infos) == 0 {
		return
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.kept == nil {
		j.kept = make([]uint64, j.n)
	}
	j.kept[rank] = infos[0].Epoch
}

// writeEnded writes the checkpoint of epoch of a rank whose program had
// ended with code.
func (j *jobRun) writeEnded(rank int, epoch uint64, code int) {
	comm, err := j.cutRank(rank, epoch)
	if err != nil {
		j.report(rank, epoch, ckpt.Stats{}, 0, 0, err)
		return
	}
	rc := rankCheckpoint{Version: rankStateVersion, Ended: true, Exit: code, Comm: transport.AppendRankState(nil, comm), Run: j.runTag}
	p, err := j.write(rank, epoch, &rc, nil, nil, nil, nil)
	if err != nil {
		j.report(rank, epoch, ckpt.Stats{}, 0, 0, err)
		return
	}
	<-p.Done()
	j.report(rank, epoch, p.Stats(), 0, 0, p.Err())
}

// cutRank takes the share of the channel state of rank, whose program
// ended, as its cut of epoch, and keeps it for the round's release.
func (j *jobRun) cutRank(rank int, epoch uint64) (*transport.RankState, error) {
	cut, err := cutAt(j.ep, []int{rank}, epoch)
	if err != nil {
		return nil, err
	}
	j.keepCut(rank, epoch, cut[0])
	return &cut[0], nil
}

// keepCut keeps rank's cut of epoch for the round's release.
func (j *jobRun) keepCut(rank int, epoch uint64, st transport.RankState) {
	j.cutMu.Lock()
	if c := j.cuts[epoch]; c != nil {
		c[rank] = st
	}
	j.cutMu.Unlock()
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
	return j.writeKey(j.key(rank), epoch, rc, nil, c, files, globals, async)
}

// writeKey is write under key k; with later instead of rc, the store asks
// for the encoded rankCheckpoint once the capture's chunks are written
// (ckpt.Meta.HostLater).
func (j *jobRun) writeKey(k ckpt.Key, epoch uint64, rc *rankCheckpoint, later func() ([]byte, error), c *host.Capture, files []byte, globals []uint64, async []byte) (*ckpt.Pending, error) {
	var hs []byte
	if later == nil {
		var err error
		if hs, err = json.Marshal(rc); err != nil {
			return nil, err
		}
	}
	var mem []byte
	var written *ckpt.Dirty
	if c != nil {
		mem, written = c.Memory, c.Dirty
	}
	return j.store.Capture(ckpt.Meta{
		Key:       k,
		Epoch:     epoch,
		Binding:   j.bind,
		Globals:   globals,
		Asyncify:  async,
		Host:      hs,
		HostLater: later,
		Files:     files,
		Created:   time.Now().UTC(),
		Dirty:     written,
	}, mem)
}
