package job

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/librahost/librahost/ckpt"
	"github.com/librahost/librahost/host"
	"github.com/librahost/librahost/transport"
)

// Live migration of a share's ranks between its hosts, and drains, as
// ckpt/proto_migrate.go decides them. The driver here:
//
//   - on the coordinator's host, takes a command's Migrate, Drain or
//     Undrain to the EpochCoordinator and answers it once the core says
//     how it ended (Migrated, Drained);
//   - on the source, pre-copies nothing yet (a Copy round is durable at
//     once: stop-and-copy); at Halt it asks the rank for a capture and
//     keeps it stopped there (onPause does not return); at Final it writes
//     the rank's whole state — memory, globals, host state, inbox, and its
//     share of the channel state (sender logs, receive positions) — under
//     the rank's migration key in the share's store, and sends it to the
//     target (Mover.Send, host/replica: only chunks the target lacks
//     travel), which first checks that its read-only inputs hash as the
//     source's do; on Drop the rank's worker ends here (host.ErrMoved), on
//     GoOn it runs on;
//   - on every host, Move re-routes the Endpoint (transport's SetRoute:
//     senders to the moved rank resend their logs to its new host);
//   - on the target, Adopt restores the rank from the state received
//     through the same restore as a resume (restoreState) and runs it
//     beside the ranks already here.
//
// Files: a job with read-write mounts cannot migrate yet (the command is
// refused in one line by host/node); its ranks' files would have to
// travel as a recovery moves them (share_files.go).

// Mover is what a share needs to move ranks between the job's hosts
// (Share.Mover); nil: migrations are refused.
type Mover struct {
	// Hosts names the job's hosts by ckpt.HostID, as the Endpoint routes.
	Hosts []string
	// Send copies the capture of k at epoch from the share's store to
	// host to's store of the job, and returns once it is durable there,
	// with the bytes of chunk values sent (those to lacked). The target
	// refuses it, in one line, if its read-only inputs do not hash to
	// inputs.
	Send func(k ckpt.Key, epoch uint64, to ckpt.HostID, inputs []string) (int64, error)
	// Inputs returns the hashes of the job's read-only mounts on this
	// host.
	Inputs func() ([]string, error)
}

// MigrateResult is how a migration went, for the command's summary.
type MigrateResult struct {
	// Downtime is from the rank's stop at its source to the coordinator
	// routing it to its target, which restores it from its own store.
	Downtime time.Duration
	Total    time.Duration // from the command to the route
	Sent     int64         // bytes of chunk values sent to the target
	Size     int64         // the guest's memory
}

// migKeyJob is the Job of the keys under which a rank's migration state
// is written at its source and received at its target, at migEpoch.
const (
	migKeyJob = "migrate"
	migEpoch  = 1
)

// MigrationKey is the store key of rank's migration state.
func MigrationKey(rank int) ckpt.Key { return ckpt.Key{Job: migKeyJob, Worker: uint32(rank)} }

// shareMigs is what a share knows of the migrations under way; guarded
// by shareRun.mu.
type shareMigs struct {
	ctx     context.Context        // the share's run: adopted ranks run under it
	rc      host.RanksConfig       // the ranks' configuration, for adopted ranks
	out     map[int]*outMig        // source: ranks told to halt, until Drop or GoOn
	adopted map[int]adoptedRank    // target: ranks adopted, running beside the others
	running sync.WaitGroup         // adopted ranks' runs
	waiters map[int]chan migAnswer // coordinator: a command waits for rank's migration
	drains  map[ckpt.HostID][]chan error
	asked   map[int]time.Time     // coordinator: when the command asked
	moved   map[int]MigrateResult // coordinator: what MOVED said of rank's migration
}

type migAnswer struct {
	res MigrateResult
	err error
}

// outMig is a rank leaving this host, from its Halt.
type outMig struct {
	to      ckpt.HostID
	ctx     context.Context // the rank's run
	final   chan struct{}   // closed by Final: send the state
	end     chan error      // nil: go on here; host.ErrMoved: the rank left
	paused  bool
	stopped time.Time // when it stopped
	sent    int64
	size    int64
}

type adoptedRank struct {
	ctx  context.Context
	stop context.CancelFunc
}

func (m *shareMigs) init() {
	if m.out == nil {
		m.out, m.adopted = map[int]*outMig{}, map[int]adoptedRank{}
		m.waiters, m.drains = map[int]chan migAnswer{}, map[ckpt.HostID][]chan error{}
		m.asked, m.moved = map[int]time.Time{}, map[int]MigrateResult{}
	}
}

// Migrate moves rank to host to while the job runs, and returns how it
// went once it ended; only the host that runs the job's coordinator
// can. A refusal or failure is one line.
func (s *Share) Migrate(ctx context.Context, rank int, to ckpt.HostID) (MigrateResult, error) {
	r := s.run.Load()
	if r == nil {
		return MigrateResult{}, errors.New("job: the job is not running on this host")
	}
	return r.migrate(ctx, rank, to)
}

// Drain moves every rank off host h, one after another, and returns once
// the last left; h takes no new ranks of the job until Undrain.
func (s *Share) Drain(ctx context.Context, h ckpt.HostID) error {
	r := s.run.Load()
	if r == nil {
		return errors.New("job: the job is not running on this host")
	}
	return r.drain(ctx, h)
}

// Undrain lets host h take ranks of the job again.
func (s *Share) Undrain(h ckpt.HostID) error {
	r := s.run.Load()
	if r == nil {
		return errors.New("job: the job is not running on this host")
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.coord == nil {
		return errNotCoordinator
	}
	err := r.coord.Undrain(h)
	r.pump()
	return err
}

// Draining reports whether the coordinator here keeps host h from
// taking ranks of the job.
func (s *Share) Draining(h ckpt.HostID) bool {
	r := s.run.Load()
	if r == nil {
		return false
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.coord != nil && r.coord.Draining(h)
}

func (r *shareRun) migrate(ctx context.Context, rank int, to ckpt.HostID) (MigrateResult, error) {
	r.mu.Lock()
	switch {
	case r.coord == nil:
		r.mu.Unlock()
		return MigrateResult{}, errNotCoordinator
	case r.s.Mover == nil:
		r.mu.Unlock()
		return MigrateResult{}, errors.New("job: this host cannot move ranks")
	case r.stopped:
		r.mu.Unlock()
		return MigrateResult{}, errors.New("job: the job is not running")
	}
	if err := r.coord.Migrate(rank, to); err != nil {
		r.mu.Unlock()
		return MigrateResult{}, err
	}
	r.migs.init()
	c := make(chan migAnswer, 1)
	r.migs.waiters[rank] = c
	r.migs.asked[rank] = time.Now()
	r.j.logf("rank %d moves to h%d", rank, to)
	r.pump()
	r.mu.Unlock()
	select {
	case a := <-c:
		return a.res, a.err
	case <-ctx.Done():
		return MigrateResult{}, context.Cause(ctx)
	}
}

func (r *shareRun) drain(ctx context.Context, h ckpt.HostID) error {
	r.mu.Lock()
	switch {
	case r.coord == nil:
		r.mu.Unlock()
		return errNotCoordinator
	case r.s.Mover == nil:
		r.mu.Unlock()
		return errors.New("job: this host cannot move ranks")
	}
	r.migs.init()
	c := make(chan error, 1)
	r.migs.drains[h] = append(r.migs.drains[h], c)
	if err := r.coord.Drain(h); err != nil {
		r.migs.drains[h] = r.migs.drains[h][:len(r.migs.drains[h])-1]
		r.mu.Unlock()
		return err
	}
	r.j.logf("host h%d drains", h)
	r.pump()
	r.mu.Unlock()
	select {
	case err := <-c:
		return err
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

// coordMigAction carries out the coordinator's migration actions. The
// caller holds r.mu.
func (r *shareRun) coordMigAction(a ckpt.Action) {
	m := &r.migs
	m.init()
	switch a.Kind {
	case ckpt.ActMigrated:
		res := m.moved[a.Rank]
		delete(m.moved, a.Rank)
		if t, ok := m.asked[a.Rank]; ok {
			res.Total = time.Since(t)
			delete(m.asked, a.Rank)
		}
		var err error
		if a.Err != "" {
			err = fmt.Errorf("%w: %s", ckpt.ErrMigrate, a.Err)
			r.j.logf("rank %d did not move to h%d: %s", a.Rank, a.Host, a.Err)
		} else {
			r.j.logf("rank %d moved to h%d: downtime %v, %s sent of %s", a.Rank, a.Host,
				res.Downtime.Round(time.Microsecond), host.FormatBytes(uint64(res.Sent)), host.FormatBytes(uint64(res.Size)))
		}
		if c := m.waiters[a.Rank]; c != nil {
			c <- migAnswer{res, err}
			delete(m.waiters, a.Rank)
		}
	case ckpt.ActDrained:
		var err error
		if a.Err != "" {
			err = fmt.Errorf("%w: the drain of h%d stopped: %s", ckpt.ErrMigrate, a.Host, a.Err)
			r.j.logf("the drain of h%d stopped: %s", a.Host, a.Err)
		} else {
			r.j.logf("host h%d drained", a.Host)
		}
		for _, c := range m.drains[a.Host] {
			c <- err
		}
		delete(m.drains, a.Host)
	}
}

// movedStats is what a MOVED of rank says of its migration here, for the
// command's summary (Msg.Err, which the core leaves alone in a MOVED).
func (r *shareRun) movedStats(rank int) string {
	mg := r.migs.out[rank]
	if mg == nil {
		return ""
	}
	return fmt.Sprintf("stopped=%d sent=%d size=%d", mg.stopped.UnixNano(), mg.sent, mg.size)
}

// noteMoved keeps what a MOVED says of its migration. The caller holds
// r.mu.
func (r *shareRun) noteMoved(m ckpt.Msg) {
	var stopped, sent, size int64
	if _, err := fmt.Sscanf(m.Err, "stopped=%d sent=%d size=%d", &stopped, &sent, &size); err != nil {
		return
	}
	r.migs.init()
	r.migs.moved[m.Rank] = MigrateResult{Downtime: time.Since(time.Unix(0, stopped)), Sent: sent, Size: size}
}

// migAction carries out a participant's migration action; false if a is
// none. The caller holds r.mu.
func (r *shareRun) migAction(a ckpt.Action) bool {
	j := r.j
	m := &r.migs
	m.init()
	switch a.Kind {
	case ckpt.ActCopy:
		// Stop-and-copy: nothing travels before the rank stops.
		r.part.CopyDurable(a.Rank, a.Round, 0, time.Now())
	case ckpt.ActHalt:
		mg := &outMig{ctx: r.rankCtx(a.Rank), final: make(chan struct{}), end: make(chan error, 1)}
		m.out[a.Rank] = mg
		switch w := j.workers[a.Rank]; {
		case j.ended[a.Rank]:
			// Its program has ended: only its channels and exit move.
			mg.paused, mg.stopped = true, time.Now()
			r.part.MigratePaused(a.Rank, time.Now())
		case w == nil:
			r.part.MigrateFailed(a.Rank, fmt.Sprintf("rank %d has no worker here", a.Rank))
		default:
			w.RequestCheckpoint()
		}
	case ckpt.ActFinal:
		mg := m.out[a.Rank]
		if mg != nil {
			mg.to = a.Host // Halt does not name it
		}
		switch {
		case mg == nil:
		case j.ended[a.Rank]:
			go r.sendEnded(a.Rank, mg)
		default:
			close(mg.final)
		}
	case ckpt.ActGoOn:
		if mg := m.out[a.Rank]; mg != nil {
			mg.end <- nil
			delete(m.out, a.Rank)
		}
	case ckpt.ActCancel:
		// The target drops a state it received but did not adopt when
		// the next one comes (host/node), and its adopted ranks' keys
		// once restored.
	case ckpt.ActMove:
		r.move(a)
	case ckpt.ActDrop:
		mg := m.out[a.Rank]
		if mg == nil {
			return false // a recovery's Drop
		}
		mg.end <- host.ErrMoved
		delete(m.out, a.Rank)
		j.workers[a.Rank] = nil
	case ckpt.ActAdopt:
		r.adopt(a.Rank, a.Epoch)
	case ckpt.ActMigrated, ckpt.ActDrained:
		r.coordMigAction(a)
	default:
		return false
	}
	return true
}

// rankCtx is the context rank runs under here. The caller holds r.mu.
func (r *shareRun) rankCtx(rank int) context.Context {
	if ar, ok := r.migs.adopted[rank]; ok {
		return ar.ctx
	}
	if r.runCtx != nil {
		return r.runCtx
	}
	return context.Background()
}

// move re-routes the Endpoint to a's placement. The caller holds r.mu.
func (r *shareRun) move(a ckpt.Action) {
	j := r.j
	names := make([]transport.HostID, len(a.Place))
	for rank, h := range a.Place {
		if int(h) < len(r.s.Mover.Hosts) {
			names[rank] = transport.HostID(r.s.Mover.Hosts[h])
		}
	}
	if err := j.ep.SetRoute(uint32(len(names)), func(rank uint32) transport.HostID { return names[rank] }); err != nil {
		j.logf("rank %d moves to h%d: %v", a.Rank, a.Host, err)
	}
	if a.Host == r.s.Host {
		if !slices.Contains(j.ranks, a.Rank) {
			j.ranks = append(j.ranks, a.Rank)
			slices.Sort(j.ranks)
		}
	} else {
		j.ranks = slices.DeleteFunc(j.ranks, func(x int) bool { return x == a.Rank })
	}
}

// placedHere leaves out of res the ranks that moved away.
func (r *shareRun) placedHere(res host.RanksResult) host.RanksResult {
	r.mu.Lock()
	here := r.part.Ranks()
	r.mu.Unlock()
	var out host.RanksResult
	for i, rank := range res.Ranks {
		if slices.Contains(here, rank) {
			out.Ranks = append(out.Ranks, rank)
			out.Codes = append(out.Codes, res.Codes[i])
			out.Errs = append(out.Errs, res.Errs[i])
		}
	}
	return out
}
