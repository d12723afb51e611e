package node

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
)

// A detached job is submitted from its first host, which also runs its
// coordinator (rank 0's). If that host is lost, the other hosts stop the
// job with its committed epochs kept, and one of them takes the
// submitter's place: the first host of the job after the coordinator's,
// in the job's host order, that still answers resumes the job from there
// (SubmitResume, as `submit --resume`) on every host of the job that
// answers, running its coordinator and its detached submission. The
// job's output goes on being kept by its hosts (`librahost logs`,
// `attach`), from the resumed epoch's positions on for the ranks that
// moved.

// submitterGone cancels job j, whose submitter's stream broke (it died,
// or was cut off), unless the submission was that of a detached job with
// checkpoints on its coordinator's host: that host's loss is the
// protocol's to find, within the job's failure timeout, which stops the
// job with its epochs kept for a host to take it over. The control
// connection goes idle after controlQUIC's MaxIdleTimeout (10 s), before
// a longer failure timeout ends, and cancelling then left nothing to
// take over. If the job still runs twice its failure timeout later, its
// coordinator is heard and only the submission is gone: it is cancelled.
func (d *Daemon) submitterGone(ctx context.Context, j *job) {
	if j.takenOverOnLoss() {
		d.logf("job %s: its detached submission on host %s went away: waiting for its coordinator to be found lost (the failure timeout) before cancelling it", j.id, j.submitter)
		select {
		case <-ctx.Done():
			return
		case <-time.After(2 * j.failureTimeout):
		}
	}
	j.cancel(errors.New("the submitter went away"))
}

// takenOverOnLoss reports whether j is a detached job with checkpoints
// submitted from its coordinator's host, which a host of the job takes
// over once that host is lost.
func (j *job) takenOverOnLoss() bool {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.detached && j.share != nil && int(j.share.Proto.Coordinator) < len(j.hosts) &&
		j.hosts[j.share.Proto.Coordinator] == j.submitter
}

// takeOverTries bounds how often a host taking a detached job over asks
// again when a host of the job has not stopped it yet.
const takeOverTries = 50

// takeOverLater takes detached job j over once it has ended here, if
// this host is the one to (takeOver).
func (d *Daemon) takeOverLater(ctx context.Context, j *job) {
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		select {
		case <-j.done:
		case <-ctx.Done():
			return
		}
		if err := d.takeOver(ctx, j); err != nil {
			d.logf("job %s (detached): not resumed from here: %v", j.id, err)
		}
	}()
}

// takeOver resumes detached job j from this host if its coordinator's
// host does not answer and no host before this one (after the
// coordinator's, in the job's order) does.
func (d *Daemon) takeOver(ctx context.Context, j *job) error {
	j.mu.Lock()
	hosts, self, share := j.hosts, j.self, j.share
	addrs := map[string]string{}
	for h, a := range j.peers {
		addrs[h] = a
	}
	j.mu.Unlock()
	if share == nil || self == "" {
		return errors.New("it keeps no checkpoints here")
	}
	tc, err := Client{ClusterDir: d.cfg.ClusterDir, As: d.cfg.Name}.tlsConfig()
	if err != nil {
		return err
	}
	answers := func(h string) bool {
		a := addrs[h]
		if a == "" {
			return false
		}
		hc, err := dialHost(ctx, a, tc, j.failureTimeout)
		if err != nil {
			return false
		}
		hc.conn.CloseWithError(0, "")
		return hc.id == h
	}
	coord := share.Proto.Coordinator
	if answers(hosts[coord]) {
		return fmt.Errorf("its coordinator's host %s answers", hosts[coord])
	}
	live, names := []string{self}, []string{d.cfg.Name}
	reached := false // this host, in the job's order after the coordinator's
	for k := 1; k < len(hosts); k++ {
		h := hosts[(int(coord)+k)%len(hosts)]
		switch {
		case h == d.cfg.Name:
			reached = true
		case !answers(h):
		case !reached:
			return nil // h comes first: it takes the job over
		default:
			live, names = append(live, addrs[h]), append(names, h)
		}
	}
	d.logf("job %s (detached): its coordinator's host %s is lost: resuming it from here on %s", j.id, hosts[coord], strings.Join(names, ","))
	for try := 0; ; try++ {
		code, err := SubmitResume(ctx, ResumeConfig{
			Client: Client{ClusterDir: d.cfg.ClusterDir, As: d.cfg.Name},
			Hosts:  live, Job: j.id, Stdout: io.Discard, Stderr: io.Discard, Log: logWriter{d, j.id}, Stop: ctx.Done(),
			Started: func(job string) { d.logf("job %s: resumed from here (detached)", job) },
		})
		var runs stillRuns
		if errors.As(err, &runs) && try < takeOverTries {
			select {
			case <-time.After(j.failureTimeout / 10):
				continue
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		if err != nil {
			return err
		}
		d.logf("job %s (detached): exit %d", j.id, code)
		return nil
	}
}

// stillRuns: a host of a job to resume has not stopped it yet.
type stillRuns struct{ msg string }

func (e stillRuns) Error() string { return e.msg }
