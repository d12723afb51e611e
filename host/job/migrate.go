package job

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"sync"
	"sync/atomic"
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
//   - on the source, each pre-copy round (Copy) asks the rank for a
//     capture, writes it under the rank's migration key in the share's
//     store at the round's epoch, lets the rank run on at once and sends
//     the capture to the target (Mover.Send, host/replica) with the
//     previous round as its base: only the chunks written since, and
//     those the target lacks, travel (the target first checks that its
//     read-only inputs hash as the source's do). The round is durable
//     with the bytes of the chunks that changed since the round before
//     (what a steady writer dirties in a round). At Halt the rank stops
//     at its next capture point and stays there (onPause does not
//     return); at Final its whole state — memory, globals, host state,
//     inbox, and its share of the channel state (sender logs, receive
//     positions) — is written and sent the same way, as the round after
//     the last; on Drop the rank's worker ends here (host.ErrMoved), on
//     GoOn it runs on;
//   - on every host, Move re-routes the Endpoint (transport's SetRoute:
//     senders to the moved rank resend their logs to its new host);
//   - on the target, Adopt restores the rank from the state received
//     through the same restore as a resume (restoreState) and runs it
//     beside the ranks already here.
//
// Files: the files a rank wrote under the job's read-write mounts go
// with its last state, and the target makes them before the rank runs
// there (migrate_files.go). Read-only inputs are checked by hash instead.

// Mover is what a share needs to move ranks between the job's hosts
// (Share.Mover); nil: migrations are refused.
type Mover struct {
	// Hosts names the job's hosts by ckpt.HostID, as the Endpoint routes.
	Hosts []string
	// Send copies the capture of k at epoch from the share's store to
	// host to's store of the job, and returns once it is durable there,
	// with the bytes of chunk values sent (those to lacked). Base is an
	// epoch of k that to holds (0: none; then to drops what it holds of
	// k first). The target refuses it, in one line, if its read-only
	// inputs do not hash to inputs. Sent, if not nil, counts the bytes
	// written to to as they go.
	Send func(k ckpt.Key, epoch, base uint64, to ckpt.HostID, inputs []string, sent *atomic.Int64) (int64, error)
	// Inputs returns the hashes of the job's read-only mounts on this
	// host.
	Inputs func() ([]string, error)
	// Final sends a rank's last state straight to host to, which writes
	// it into the worker made there ahead and answers (nil: the last state
	// goes through the stores); it returns the bytes sent.
	Final func(fs *FinalState, to ckpt.HostID) (int64, error)
	// Cancel tells host to that the migration of rank to it is off: it
	// drops what it received and the worker it made ahead.
	Cancel func(rank int, to ckpt.HostID) error
	// Dial, if set, opens the connection to host to ahead of a rank's
	// last state, at its halt (the handshake then overlaps its capture).
	Dial func(to ckpt.HostID)
}

// MigrateResult is how a migration went, for the command's summary.
type MigrateResult struct {
	// Downtime is from the rank's stop at its source to the coordinator
	// routing it to its target, which restores it from its own store.
	Downtime time.Duration
	Total    time.Duration // from the command to the route
	Sent     int64         // bytes of chunk values sent to the target
	Size     int64         // the guest's memory
	Rounds   int           // pre-copy rounds durable at the target
	// Stopped is when the rank stopped at its source (Share.Arrived).
	Stopped time.Time
}

// MigrateProgress is how far the migration of a rank off this host has
// come (Share.Progress).
type MigrateProgress struct {
	To        ckpt.HostID
	Rounds    int     // pre-copy rounds durable at the target
	Sent      int64   // bytes sent so far
	Size      int64   // the guest's memory
	DirtyRate float64 // bytes a second the rank wrote in the last round
}

// precopyOff (LIBRAHOST_PRECOPY=off on the source host) moves ranks by
// stop-and-copy: a pre-copy round is durable at once, with nothing sent,
// and the rank stops for all of its state (bench/migrate.go compares).
var precopyOff = os.Getenv("LIBRAHOST_PRECOPY") == "off"

// migKeyJob is the Job of the keys under which a rank's migration state
// is written at its source and received at its target: pre-copy round
// k at epoch k, the last state at the epoch after the last round.
const migKeyJob = "migrate"

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
	// target: the ranks adopted, by the time they stopped at their
	// source, and when each ran here (closed ran once it does).
	arrived map[int64]*arrival
	// target: the workers of ranks moving here, made ahead
	// (migrate_stage.go).
	staged map[int]*stagedRank
	// target: the drops of adopted ranks' migration keys under way
	// (clearMigration).
	cleared map[int]chan struct{}
	// target: the epoch at which each rank came here, until a recovery:
	// its journal here starts with the files as they were when it
	// stopped at its source, not as of that epoch (recover).
	came map[int]uint64
	// source: the ranks that left, until their files here are as before
	// they ran here (left); a move back waits for it.
	leaving map[int]chan struct{}
}

type arrival struct {
	ran  chan struct{}
	took time.Duration // stopped at the source until running here
}

type migAnswer struct {
	res MigrateResult
	err error
}

// outMig is a rank leaving this host, from its first Copy.
type outMig struct {
	to      ckpt.HostID
	ctx     context.Context // the rank's run
	final   chan struct{}   // closed by Final: send the state
	end     chan error      // nil: go on here; host.ErrMoved: the rank left
	round   int             // the newest pre-copy round asked for
	copying bool            // its capture is to be taken
	held    uint64          // the newest round durable at the target
	rounds  int             // rounds durable at the target
	last    time.Time       // when the newest round's capture was taken
	rate    float64         // bytes a second written in the last round
	halting bool            // Halt: the next capture is the last
	paused  bool
	stopped time.Time // when it stopped
	sent    int64
	size    int64
	chain   dirtyChain    // the write tracking of its captures since the round held
	gone    chan struct{} // closed when its stop here has ended (migPause)
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
		m.arrived = map[int64]*arrival{}
		m.staged = map[int]*stagedRank{}
		m.cleared = map[int]chan struct{}{}
		m.came = map[int]uint64{}
		m.leaving = map[int]chan struct{}{}
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
			err = fmt.Errorf("job: rank %d did not move to h%d: %s", a.Rank, a.Host, a.Err)
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
	return fmt.Sprintf("stopped=%d sent=%d size=%d rounds=%d", mg.stopped.UnixNano(), mg.sent, mg.size, mg.rounds)
}

// noteMoved keeps what a MOVED says of its migration. The caller holds
// r.mu.
func (r *shareRun) noteMoved(m ckpt.Msg) {
	var stopped, sent, size int64
	var rounds int
	if _, err := fmt.Sscanf(m.Err, "stopped=%d sent=%d size=%d rounds=%d", &stopped, &sent, &size, &rounds); err != nil {
		return
	}
	r.migs.init()
	r.migs.moved[m.Rank] = MigrateResult{Downtime: time.Since(time.Unix(0, stopped)), Sent: sent, Size: size, Rounds: rounds,
		Stopped: time.Unix(0, stopped)}
}

// migAction carries out a participant's migration action; false if a is
// none. The caller holds r.mu.
func (r *shareRun) migAction(a ckpt.Action) bool {
	j := r.j
	m := &r.migs
	m.init()
	switch a.Kind {
	case ckpt.ActCopy:
		mg := r.outMig(a.Rank)
		mg.to, mg.round = a.Host, a.Round
		if j.ended[a.Rank] || precopyOff {
			r.part.CopyDurable(a.Rank, a.Round, 0, time.Now()) // nothing to copy before the stop
		} else if mg.copying = true; j.workers[a.Rank] != nil {
			j.workers[a.Rank].RequestCheckpoint() // else its worker, being made, asks (adopt)
		}
	case ckpt.ActHalt:
		mg := r.outMig(a.Rank)
		mg.halting, mg.copying = true, false
		if r.s.Mover.Dial != nil && mg.held > 0 && !precopyOff {
			r.s.Mover.Dial(mg.to)
		}
		switch w := j.workers[a.Rank]; {
		case j.ended[a.Rank]:
			// Its program has ended: only its channels and exit move.
			mg.paused, mg.stopped = true, time.Now()
			r.part.MigratePaused(a.Rank, time.Now())
		case w != nil:
			w.RequestCheckpoint() // else its worker, being made, asks (adopt)
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
			j.ep.Stayed(uint32(a.Rank))
			mg.end <- nil
			delete(m.out, a.Rank)
			go j.store.DeleteAfter(MigrationKey(a.Rank), 0)
		}
	case ckpt.ActCancel:
		// The migration failed before the rank stopped (after, GoOn came
		// first): its rounds end here, and the target is told to drop
		// what it received and the worker it made ahead.
		if mg := m.out[a.Rank]; mg != nil && !mg.paused {
			delete(m.out, a.Rank)
			go j.store.DeleteAfter(MigrationKey(a.Rank), 0)
		}
		if r.s.Mover != nil && r.s.Mover.Cancel != nil && a.Host != r.s.Host {
			go r.tellCancel(a.Rank, a.Host)
		}
	case ckpt.ActMove:
		r.move(a)
	case ckpt.ActDrop:
		mg := m.out[a.Rank]
		if mg == nil {
			return false // a recovery's Drop
		}
		mg.end <- host.ErrMoved
		if mg.paused && !j.ended[a.Rank] {
			m.leaving[a.Rank] = mg.gone // its files here are undone (left)
		}
		delete(m.out, a.Rank)
		j.workers[a.Rank] = nil
		go j.store.DeleteAfter(MigrationKey(a.Rank), 0)
	case ckpt.ActAdopt:
		r.adopt(a.Rank, a.Epoch)
	case ckpt.ActMigrated, ckpt.ActDrained:
		r.coordMigAction(a)
	default:
		return false
	}
	return true
}

// tellCancel tells host to that the migration of rank to it is off.
func (r *shareRun) tellCancel(rank int, to ckpt.HostID) {
	if err := r.s.Mover.Cancel(rank, to); err != nil {
		r.j.logf("rank %d: h%d was not told that its move there is off: %v", rank, to, err)
	}
}

// outMig returns rank's migration off this host, made at its first
// action. The caller holds r.mu.
func (r *shareRun) outMig(rank int) *outMig {
	mg := r.migs.out[rank]
	if mg == nil {
		mg = &outMig{ctx: r.rankCtx(rank), final: make(chan struct{}), end: make(chan error, 1), gone: make(chan struct{})}
		r.migs.out[rank] = mg
	}
	return mg
}

// Arrived waits until the rank that stopped at its source at stopped
// runs here, and returns how long it was stopped (the clocks of its
// source and of this host taken as one); false if ctx ends first.
func (s *Share) Arrived(ctx context.Context, stopped time.Time) (time.Duration, bool) {
	r := s.run.Load()
	if r == nil {
		return 0, false
	}
	r.mu.Lock()
	a := r.arrival(stopped.UnixNano())
	r.mu.Unlock()
	select {
	case <-a.ran:
		return a.took, true
	case <-ctx.Done():
		return 0, false
	}
}

// arrival returns the arrival of the rank stopped at stopped (unix ns).
// The caller holds r.mu.
func (r *shareRun) arrival(stopped int64) *arrival {
	r.migs.init()
	a := r.migs.arrived[stopped]
	if a == nil {
		a = &arrival{ran: make(chan struct{})}
		r.migs.arrived[stopped] = a
	}
	return a
}

// Progress returns how far the migration of rank off this host has
// come; false if none is under way here.
func (s *Share) Progress(rank int) (MigrateProgress, bool) {
	r := s.run.Load()
	if r == nil {
		return MigrateProgress{}, false
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	mg := r.migs.out[rank]
	if mg == nil {
		return MigrateProgress{}, false
	}
	return MigrateProgress{To: mg.to, Rounds: mg.rounds, Sent: mg.sent, Size: mg.size, DirtyRate: mg.rate}, true
}

// Runs reports whether rank runs on this host.
func (s *Share) Runs(rank int) bool {
	r := s.run.Load()
	if r == nil {
		return false
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Contains(r.part.Ranks(), rank)
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
