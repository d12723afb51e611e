package job

import (
	"context"
	"errors"
	"os"
	"time"

	"github.com/librahost/librahost/ckpt"
	"github.com/librahost/librahost/host"
	"github.com/librahost/librahost/host/metrics"
)

// observer is what the driver keeps to report a job to Config.Metrics and
// Config.Status; both may be nil. Its fields are guarded by the job's mu.
type observer struct {
	met       *metrics.Job
	triggered time.Time   // the round under way began
	durable   time.Time   // the round's newest rank became durable
	acked     int         // ranks whose part of the round is durable
	size      uint64      // their checkpoints' stored sizes
	last      []time.Time // by rank: its previous checkpoint (or start), for its dirty rate
}

// written is what a rank's durable checkpoint's manifest says.
type written struct {
	size, mem, chunk uint64
}

func (j *jobRun) observing() bool { return j.cfg.Metrics != nil || j.cfg.Status != nil }

// observeRun starts reporting the job as its ranks start, and follows
// their ends.
func (j *jobRun) observeRun(rc *host.RanksConfig) {
	if !j.observing() {
		return
	}
	now := time.Now()
	j.mu.Lock()
	j.obs.met = j.cfg.Metrics.Start(j.n)
	if j.ownEp { // a host daemon reports its jobs' endpoints itself
		j.obs.met.Links(j.ep.Counters)
	}
	j.obs.last = make([]time.Time, j.n)
	for r := range j.obs.last {
		j.obs.last[r] = now
	}
	ranks := make([]RankView, 0, len(j.ranks))
	for _, r := range j.ranks {
		rv := RankView{Rank: r, State: "running"}
		if j.ended[r] {
			rv.State, rv.Exit = "exited", j.codes[r]
		}
		ranks = append(ranks, rv)
	}
	j.mu.Unlock()
	j.cfg.Status.update(func(v *StatusView) { v.State, v.Ranks = "running", ranks })
	if j.cfg.Status != nil {
		next := rc.OnExit
		rc.OnExit = func(rank, code int, err error) {
			if next != nil {
				next(rank, code, err)
			}
			j.cfg.Status.rank(rank, rankState(err), code, err)
		}
	}
}

// rankState is the state of a rank whose program ended with err.
func rankState(err error) string {
	switch {
	case err == nil:
		return "exited"
	case errors.Is(err, ErrStopped), errors.Is(err, context.Canceled):
		return "stopped"
	default:
		return "failed"
	}
}

// observeDone ends the job's report: the ranks that did not end by
// themselves were stopped.
func (j *jobRun) observeDone(res host.RanksResult, err error) {
	if !j.observing() {
		return
	}
	j.mu.Lock()
	j.obs.met.End()
	stopped := j.stopAt != 0
	j.mu.Unlock()
	state := "ended"
	if _, oerr := res.Outcome(); err != nil || oerr != nil {
		state = "failed"
	}
	if stopped || j.stopped() {
		state = "stopped"
	}
	j.cfg.Status.update(func(v *StatusView) {
		v.State, v.Ended = state, time.Now()
		for i := range v.Ranks {
			if v.Ranks[i].State == "running" {
				v.Ranks[i].State = "stopped"
			}
		}
	})
}

// observeBegin: the round of epoch began. The caller holds j.mu.
func (j *jobRun) observeBegin(epoch uint64) {
	if !j.observing() {
		return
	}
	now := time.Now()
	j.obs.triggered, j.obs.durable, j.obs.acked, j.obs.size = now, time.Time{}, 0, 0
	j.cfg.Status.checkpoint(epoch, func(c *Checkpoint) {
		c.Status, c.Of, c.Triggered = CheckpointPending, j.n, now
	})
}

// observeWritten reads what rank's durable checkpoint of epoch holds,
// outside the job's lock.
func (j *jobRun) observeWritten(rank int, epoch uint64, err error) written {
	if !j.observing() || err != nil {
		return written{}
	}
	m, merr := j.store.Manifest(j.key(rank), epoch)
	if merr != nil {
		return written{}
	}
	return written{size: m.StoredBytes, mem: m.MemSize, chunk: uint64(m.ChunkSize)}
}

// observeDurable: rank's part of epoch is durable. The caller holds j.mu.
func (j *jobRun) observeDurable(rank int, epoch uint64, st ckpt.Stats, w written) {
	if !j.observing() {
		return
	}
	now := time.Now()
	j.obs.acked++
	j.obs.durable = now
	j.obs.size += w.size
	acked := j.obs.acked
	j.cfg.Status.checkpoint(epoch, func(c *Checkpoint) { c.Acked = acked })
	if w.mem == 0 { // a rank whose program had ended
		return
	}
	var rate float64
	if d := now.Sub(j.obs.last[rank]); d > 0 {
		rate = float64(uint64(st.Changed)*w.chunk) / d.Seconds()
	}
	j.obs.last[rank] = now
	j.obs.met.Worker(rank, w.mem, rate)
}

// observeEnd: the round of epoch ended, committed if err is nil. The
// caller holds j.mu.
func (j *jobRun) observeEnd(epoch uint64, err error, st roundStats) {
	if !j.observing() {
		return
	}
	o := &j.obs
	took := time.Since(o.triggered)
	if err != nil {
		o.met.CheckpointFailed()
		j.cfg.Status.checkpoint(epoch, func(c *Checkpoint) {
			c.Status, c.Duration, c.Error = CheckpointFailed, took, err.Error()
		})
		return
	}
	var durable time.Duration
	if !o.durable.IsZero() {
		durable = o.durable.Sub(o.triggered)
	}
	o.met.CheckpointCommitted(metrics.CheckpointStats{Pause: st.maxStop, Durable: durable, Commit: took, Size: o.size, Incremental: st.stored})
	o.met.StoreSize(storeSize(j.store.Path()))
	j.cfg.Status.checkpoint(epoch, func(c *Checkpoint) {
		c.Status, c.Duration, c.Size, c.Incremental = CheckpointCommitted, took, o.size, st.stored
	})
}

// storeSize is the size on disk of the store at path: its bbolt file and
// its segments.
func storeSize(path string) uint64 {
	var n uint64
	if fi, err := os.Stat(path); err == nil {
		n += uint64(fi.Size())
	}
	des, _ := os.ReadDir(path + ".seg")
	for _, de := range des {
		if fi, err := de.Info(); err == nil {
			n += uint64(fi.Size())
		}
	}
	return n
}
