package job

import (
	"context"
	"errors"
	"os"
	"sync"
	"time"

	"github.com/librahost/librahost/host"
	"github.com/librahost/librahost/host/metrics"
)

// observer is what the driver keeps to report a job to Config.Metrics and
// Config.Status; both may be nil. Its lock is taken last: the driver may
// hold its own (j.mu, a share's mu) when it reports.
type observer struct {
	mu     sync.Mutex
	met    *metrics.Job
	rounds map[uint64]*roundObs // by epoch: the rounds under way here
	last   []time.Time          // by rank: its previous checkpoint (or start), for its dirty rate
	rec    recoveryObs          // a share's recoveries (job_observe_recovery.go)
}

// roundObs is a round under way as the observer sees it.
type roundObs struct {
	triggered time.Time // the round began here
	durable   time.Time // the round's newest rank became durable here
	acked     int       // ranks whose part is durable
	size      uint64    // their checkpoints' stored sizes
	stored    uint64    // the bytes they added to the store
	pause     time.Duration
	held      time.Duration
}

func (j *jobRun) observing() bool { return j.cfg.Metrics != nil || j.cfg.Status != nil }

// observeRun starts reporting the job as its ranks start, and follows
// their ends.
func (j *jobRun) observeRun(rc *host.RanksConfig) {
	if !j.observing() {
		return
	}
	now := time.Now()
	j.obs.mu.Lock()
	j.obs.met = j.cfg.Metrics.Start(j.n)
	if j.ownEp { // a host daemon reports its jobs' endpoints itself
		j.obs.met.Links(j.ep.Counters)
	}
	j.obs.rounds = map[uint64]*roundObs{}
	j.obs.last = make([]time.Time, j.n)
	for r := range j.obs.last {
		j.obs.last[r] = now
	}
	j.obs.mu.Unlock()
	j.mu.Lock()
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
	j.obs.mu.Lock()
	j.obs.met.End()
	j.obs.mu.Unlock()
	j.mu.Lock()
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

// observeBegin: the round of epoch began here (again: nothing).
func (j *jobRun) observeBegin(epoch uint64) {
	if !j.observing() {
		return
	}
	o := &j.obs
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.rounds == nil || o.rounds[epoch] != nil {
		return
	}
	now := time.Now()
	o.rounds[epoch] = &roundObs{triggered: now}
	j.cfg.Status.checkpoint(epoch, func(c *Checkpoint) {
		c.Status, c.Of, c.Triggered = CheckpointPending, len(j.ranks), now
	})
}

// observeDurable: rank's part of epoch is durable here (err nil), after
// the guest stood still for stopped (0: unknown, its capture's time
// counts) and was held up for held in all (0: unknown). It reads the checkpoint's manifest: the caller may hold its
// locks, but not j.obs.mu.
func (j *jobRun) observeDurable(rank int, epoch uint64, stopped, held time.Duration, err error) {
	if !j.observing() || err != nil {
		return
	}
	m, merr := j.store.Manifest(j.key(rank), epoch)
	if merr != nil {
		return
	}
	if stopped == 0 {
		stopped = m.Stats.PauseDur
	}
	now := time.Now()
	o := &j.obs
	o.mu.Lock()
	defer o.mu.Unlock()
	r := o.rounds[epoch]
	if r == nil { // a round that ended here already
		return
	}
	r.acked++
	r.durable = now
	r.size += m.StoredBytes
	r.stored += uint64(m.Stats.BytesStored)
	acked := r.acked
	j.cfg.Status.checkpoint(epoch, func(c *Checkpoint) { c.Acked = acked })
	if m.MemSize == 0 { // a rank whose program had ended
		return
	}
	r.pause = max(r.pause, stopped)
	r.held = max(r.held, held)
	var rate float64
	if d := now.Sub(o.last[rank]); d > 0 {
		rate = float64(uint64(m.Stats.Changed)*uint64(m.ChunkSize)) / d.Seconds()
	}
	o.last[rank] = now
	o.met.Worker(rank, m.MemSize, rate)
}

// observeEnd: the round of epoch ended here, committed if err is nil.
func (j *jobRun) observeEnd(epoch uint64, err error) {
	if !j.observing() {
		return
	}
	o := &j.obs
	o.mu.Lock()
	defer o.mu.Unlock()
	r := o.rounds[epoch]
	if r == nil {
		return
	}
	delete(o.rounds, epoch)
	took := time.Since(r.triggered)
	if err != nil {
		o.met.CheckpointFailed()
		j.cfg.Status.checkpoint(epoch, func(c *Checkpoint) {
			c.Status, c.Duration, c.Error = CheckpointFailed, took, err.Error()
		})
		return
	}
	var durable time.Duration
	if !r.durable.IsZero() {
		durable = r.durable.Sub(r.triggered)
	}
	o.met.CheckpointCommitted(metrics.CheckpointStats{Pause: r.pause, Held: r.held, Durable: durable, Commit: took, Size: r.size, Incremental: r.stored})
	o.met.StoreSize(storeSize(j.store.Path()))
	j.cfg.Status.checkpoint(epoch, func(c *Checkpoint) {
		c.Status, c.Duration, c.Size, c.Incremental = CheckpointCommitted, took, r.size, r.stored
	})
}

// observeControl counts control messages sent to and received from the
// job's other hosts.
func (j *jobRun) observeControl(sent, received int) {
	if j.cfg.Metrics == nil {
		return
	}
	j.obs.mu.Lock()
	j.obs.met.ControlMessages(sent, received)
	j.obs.mu.Unlock()
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
