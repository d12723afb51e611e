package node

import (
	"errors"
	"slices"

	"github.com/librahost/librahost/host/jobrec"
)

// A daemon keeps a record of each job it runs, and the job's output here,
// in its --data (host/jobrec): written when the job comes and when it
// ends, so that a restarted daemon lists its past jobs (status) and
// `librahost logs` and `attach` replay their output.

// openRecords opens the daemon's records; the jobs they list as running
// ran when the daemon last stopped: they are recorded as failed, ended
// when their output last came.
func (d *Daemon) openRecords() error {
	recs, err := jobrec.Open(jobrec.Config{Dir: d.cfg.DataDir, MaxOutput: d.cfg.MaxOutput})
	if err != nil {
		return err
	}
	un, err := recs.Unended()
	if err != nil {
		recs.Close()
		return err
	}
	for _, r := range un {
		r.State, r.Why = stateFailed, "the host daemon stopped while the job ran"
		r.Ended = r.Started
		if t := recs.LastOutput(r.ID); t.After(r.Started) {
			r.Ended = t
		}
		for i := range r.Workers {
			if w := &r.Workers[i]; w.State == workerStarting || w.State == workerRunning {
				w.State = workerStopped
			}
		}
		if err := recs.Put(r); err != nil {
			recs.Close()
			return err
		}
		d.logf("job %s: had not ended when the daemon stopped: recorded as failed", r.ID)
	}
	d.recs = recs
	return nil
}

// recordOf is what the records keep of job j.
func recordOf(j *job) jobrec.Record {
	st := j.status()
	r := jobrec.Record{ID: st.ID, Module: st.Module, N: st.N, Submitter: st.Submitter, Detached: st.Detached, Placement: j.placement,
		State: st.State, Started: st.Started, Ended: st.Ended, Why: st.Why}
	for _, w := range st.Workers {
		r.Workers = append(r.Workers, jobrec.Worker{Rank: w.Rank, State: w.State, Exit: w.Exit, Error: w.Error})
	}
	return r
}

// statusOfRecord is the status of an ended job from its record.
func statusOfRecord(r jobrec.Record) JobStatus {
	st := JobStatus{ID: r.ID, Module: r.Module, N: r.N, Submitter: r.Submitter, Detached: r.Detached, State: r.State,
		Started: r.Started, Ended: r.Ended, Why: r.Why, Workers: []WorkerStatus{}}
	for _, w := range r.Workers {
		st.Workers = append(st.Workers, WorkerStatus{Rank: w.Rank, State: w.State, Exit: w.Exit, Error: w.Error})
	}
	return st
}

// recordStart records a job that has come, and starts its output log.
func (d *Daemon) recordStart(j *job) {
	defer close(j.logged)
	if err := d.recs.Put(recordOf(j)); err != nil {
		d.logf("job %s: %v (it runs unrecorded)", j.id, err)
	}
	l, err := d.recs.Create(j.id)
	if err != nil {
		d.logf("job %s: %v (its output is not kept)", j.id, err)
		return
	}
	j.mu.Lock()
	j.log = l
	j.mu.Unlock()
}

// recordEnd records how a job ended and finishes its output log.
func (d *Daemon) recordEnd(j *job) {
	if err := d.recs.Put(recordOf(j)); err != nil {
		d.logf("job %s: %v", j.id, err)
	}
	if err := d.recs.Finish(j.id); err != nil {
		d.logf("job %s: %v", j.id, err)
	}
}

// recorded reports whether the records hold a job of that ID.
func (d *Daemon) recorded(id string) bool {
	_, err := d.recs.Get(id)
	return !errors.Is(err, jobrec.ErrNoRecord)
}

// keep adds output of a rank to the job's log here; a log that fails is
// said once in the daemon's log, and the job runs on.
func (j *job) keep(d *Daemon, rank int, stream byte, off uint64, p []byte) {
	j.mu.Lock()
	l := j.log
	j.mu.Unlock()
	if l == nil {
		return
	}
	if err := l.Append(rank, stream, off, p); err != nil && !errors.Is(err, jobrec.ErrFinished) {
		j.mu.Lock()
		if j.log == l {
			j.log = nil
			d.logf("job %s: %v (the rest of its output is not kept)", j.id, err)
		}
		j.mu.Unlock()
	}
}

// endedStatus lists the newest keepEnded ended jobs, oldest first: those
// this daemon ran with their live status (their newest checkpoints), the
// others from their records.
func (d *Daemon) endedStatus(ended []*job) []JobStatus {
	byID := map[string]*job{}
	for _, j := range ended {
		byID[j.id] = j
	}
	recs, err := d.recs.List(keepEnded, func(r jobrec.Record) bool { return !r.Ended.IsZero() })
	if err != nil {
		d.logf("records: %v", err)
	}
	var out []JobStatus
	for _, r := range recs {
		if j := byID[r.ID]; j != nil {
			out = append(out, j.status())
			delete(byID, r.ID)
		} else {
			out = append(out, statusOfRecord(r))
		}
	}
	for _, j := range ended { // unrecorded
		if byID[j.id] != nil {
			out = append(out, j.status())
		}
	}
	slices.SortStableFunc(out, func(a, b JobStatus) int { return a.Started.Compare(b.Started) })
	if len(out) > keepEnded {
		out = out[len(out)-keepEnded:]
	}
	return out
}

// recordWhy keeps the one-line reason a job ended with (its submitter is
// told the same).
func (j *job) recordWhy(err error) {
	j.mu.Lock()
	if j.why == "" {
		j.why = err.Error()
	}
	j.mu.Unlock()
}
