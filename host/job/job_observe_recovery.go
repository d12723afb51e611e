package job

import (
	"slices"
	"time"

	"github.com/librahost/librahost/ckpt"
)

// A share's recoveries, as the observer reports them (share_recover.go
// tells it): each incarnation after the first is one recovery, counted
// when its rollback reaches this host and timed until its RESUME, from
// the loss's detection on the coordinator's host, from the rollback's
// arrival on the others.

// recoveryObs is what the observer keeps of a share's recoveries.
type recoveryObs struct {
	place []ckpt.HostID        // the placement now (nil: the share's first)
	began map[uint64]time.Time // by incarnation: the recoveries under way
}

// recoveryBegan notes that incarnation inc's recovery began at now, if it
// had not already. The caller holds o.mu.
func (o *observer) recoveryBegan(inc uint64, now time.Time) time.Time {
	if o.rec.began == nil {
		o.rec.began = map[uint64]time.Time{}
	}
	if t, ok := o.rec.began[inc]; ok {
		return t
	}
	o.rec.began[inc] = now
	return now
}

// observeLost: the coordinator here found host lost, and incarnation inc
// rolls back to the committed epoch.
func (j *jobRun) observeLost(inc uint64, lost ckpt.HostID, epoch uint64) {
	if !j.observing() {
		return
	}
	o := &j.obs
	o.mu.Lock()
	began := o.recoveryBegan(inc, time.Now())
	o.mu.Unlock()
	j.cfg.Status.recovery(inc, func(r *Recovery) {
		r.Epoch, r.Began = epoch, began
		if !slices.Contains(r.Lost, lost) {
			r.Lost = append(r.Lost, lost)
			slices.Sort(r.Lost)
		}
	})
}

// observeRoute: incarnation inc's rollback reached this host; its ranks
// are placed by place. The hosts whose ranks all moved away are lost.
func (j *jobRun) observeRoute(inc uint64, place []ckpt.HostID) {
	if !j.observing() {
		return
	}
	o := &j.obs
	o.mu.Lock()
	old := o.rec.place
	if old == nil && j.cfg.Share != nil {
		old = j.cfg.Share.Proto.Place
	}
	o.rec.place = slices.Clone(place)
	began := o.recoveryBegan(inc, time.Now())
	o.met.RecoveryBegan()
	o.mu.Unlock()
	j.cfg.Status.recovery(inc, func(r *Recovery) {
		r.Began = began
		for _, h := range old {
			if !slices.Contains(place, h) && !slices.Contains(r.Lost, h) {
				r.Lost = append(r.Lost, h)
			}
		}
		slices.Sort(r.Lost)
	})
}

// observeRollback: rank goes back to epoch here for incarnation inc,
// restored from its replica if moved.
func (j *jobRun) observeRollback(inc, epoch uint64, rank int, moved bool) {
	j.cfg.Status.recovery(inc, func(r *Recovery) {
		r.Epoch = epoch
		if moved && !slices.Contains(r.Moved, rank) {
			r.Moved = append(r.Moved, rank)
		}
	})
}

// observeResume: the ranks of incarnation inc run again.
func (j *jobRun) observeResume(inc uint64) {
	if !j.observing() {
		return
	}
	o := &j.obs
	o.mu.Lock()
	began, ok := o.rec.began[inc]
	delete(o.rec.began, inc)
	took := max(time.Since(began), time.Nanosecond)
	if ok {
		o.met.RecoveryDone(took)
	}
	o.mu.Unlock()
	if ok {
		j.cfg.Status.recovery(inc, func(r *Recovery) { r.Took = took })
	}
}
