package jobsim

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"github.com/librahost/librahost/ckpt"
	"github.com/librahost/librahost/transport"
)

// Config is one simulated job. Zero values mean the defaults.
type Config struct {
	Hosts    int // default 3
	Ranks    int // default 6
	Replicas int // default 1
	Steps    int // program steps per rank, default 40
	Seed     uint64

	Faults       bool // lose, duplicate and reorder data frames
	Crashes      int  // hosts that crash, at most
	Coordinator  bool // the coordinator's host may crash too: the job stops and is resumed
	DiskFailures bool // some checkpoint writes fail
	Migrations   int  // migrations (and drains) asked for at random steps, at most; targets may refuse or crash
	Drains       bool // some of them drain a host (and undrain it later)
	MaxRounds    int  // checkpoint rounds under way at once (ckpt.ProtoConfig.MaxRounds), default 1
}

// Result is how a simulated job ended.
type Result struct {
	Output     [][]string // what the submitter printed, per rank
	Files      [][]string // each rank's file at the end
	Committed  uint64
	Recoveries int
	Resumes    int // times the job was resumed after its coordinator's host died
	Crashed    int
	Moved      int // migrations that ended with the rank on its target
	MigFailed  int // migrations that ended with the rank where it was
	Drained    int // drains that moved every rank off their host
	TargetDied int // hosts that crashed while a migration to them was under way
	Events     int
	Stopped    string // the job stopped instead of finishing (why)
}

const (
	failureTimeout = 2 * time.Second
	checkEvery     = 300 * time.Millisecond
	maxEvents      = 400000
	traceKeep      = 200
)

// work is something a host's driver does for its participant or for the
// coordinator, finished at a later step.
type work struct {
	a     ckpt.Action
	coord bool
	snap  *snapshot
}

type dataFrame struct {
	inc      uint64
	from, to int // hosts
	f        transport.Frame
}

type ckey struct {
	rank  int
	epoch uint64
}

type host struct {
	id      int
	dead    bool
	stopped bool
	part    *ckpt.Participant
	store   map[ckey]*snapshot
	records map[uint64]*ckpt.CommitRecord // commit records written here
	ranks   map[int]*rank
	work    []work
	route   []ckpt.HostID     // where this host sends each rank's frames
	staged  map[int]*snapshot // ranks migrating here: their last state, until Adopt
}

type world struct {
	cfg      Config
	rng      *rand.Rand
	now      time.Time
	coord    *ckpt.EpochCoordinator
	coordID  int
	hosts    []*host
	data     []dataFrame
	ctl      []ckpt.Msg
	out      [][]string
	want     [][]string
	payloads [][][]byte
	trace    []string
	written  map[ckey]*snapshot // every checkpoint written, on hosts dead or alive
	place0   []ckpt.HostID      // where ranks start
	nextTrig time.Time
	asked    int    // migrations and drains asked for
	ending   bool   // the programs ended: no more crashes or migrations
	endEpoch uint64 // the newest epoch begun when they ended
	res      Result
}

// Run simulates one job. An error is a broken invariant, with the trace of
// the last steps.
func Run(cfg Config) (Result, error) {
	w, err := newWorld(cfg)
	if err != nil {
		return Result{}, err
	}
	err = w.run()
	if err != nil {
		err = fmt.Errorf("seed %d: %w\n%s", cfg.Seed, err, strings.Join(w.trace, "\n"))
	}
	return w.res, err
}

func newWorld(cfg Config) (*world, error) {
	cfg.Hosts = cmpOr(cfg.Hosts, 3)
	cfg.Ranks = cmpOr(cfg.Ranks, 6)
	cfg.Replicas = cmpOr(cfg.Replicas, 1)
	cfg.Steps = cmpOr(cfg.Steps, 40)
	if cfg.Ranks < 2 {
		return nil, fmt.Errorf("jobsim: a job needs at least two ranks")
	}
	w := &world{cfg: cfg, rng: rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x5eed)), now: time.Unix(1000, 0),
		out: make([][]string, cfg.Ranks), written: map[ckey]*snapshot{}}
	w.want, w.payloads = reference(cfg.Ranks, cfg.Steps)
	place := make([]ckpt.HostID, cfg.Ranks)
	for r := range place {
		place[r] = ckpt.HostID(r % cfg.Hosts)
	}
	w.place0 = place
	pc := protoConfig(cfg)
	pc.Place = place
	var err error
	if w.coord, err = ckpt.NewEpochCoordinator(pc, 0); err != nil {
		return nil, err
	}
	w.coord.Start(w.now)
	for h := range cfg.Hosts {
		p, err := ckpt.NewParticipant(pc, ckpt.HostID(h))
		if err != nil {
			return nil, err
		}
		p.Start(w.now)
		x := &host{id: h, part: p, store: map[ckey]*snapshot{}, records: map[uint64]*ckpt.CommitRecord{}, ranks: map[int]*rank{},
			route: slices.Clone(place), staged: map[int]*snapshot{}}
		for _, r := range p.Ranks() {
			x.ranks[r] = newRank(r, cfg.Ranks)
			x.ranks[r].running = true
		}
		w.hosts = append(w.hosts, x)
	}
	w.nextTrig = w.now.Add(checkEvery)
	return w, nil
}

func cmpOr(v, def int) int {
	if v == 0 {
		return def
	}
	return v
}

func (w *world) logf(format string, args ...any) {
	if len(w.trace) >= traceKeep {
		w.trace = w.trace[1:]
	}
	w.trace = append(w.trace, fmt.Sprintf("%5d %s ", w.res.Events, w.now.Sub(time.Unix(1000, 0)))+fmt.Sprintf(format, args...))
}

func (w *world) run() error {
	for w.res.Events = 0; w.res.Events < maxEvents; w.res.Events++ {
		if w.res.Stopped != "" {
			return w.checkStopped()
		}
		if w.finished() {
			if !w.ending {
				// The programs ended: a round begun from now on must commit
				// (no more crashes or migrations), or checkpointing is stuck.
				if err := w.checkEnd(); err != nil {
					return err
				}
				w.ending, w.endEpoch = true, max(w.coord.Round(), w.coord.Committed())
			}
			if w.coord.Committed() > w.endEpoch {
				return w.checkEnd()
			}
		}
		if err := w.step(); err != nil {
			return err
		}
	}
	if w.ending {
		return fmt.Errorf("no checkpoint round commits after the programs ended (round %d, committed %d, e%d before): %s",
			w.coord.Round(), w.coord.Committed(), w.endEpoch, w.dump())
	}
	return fmt.Errorf("no end after %d events: %s", maxEvents, w.dump())
}

// dump describes every live rank, for a job that makes no progress.
func (w *world) dump() string {
	var b strings.Builder
	for _, x := range w.hosts {
		if x.dead {
			continue
		}
		fmt.Fprintf(&b, "\nh%d inc=%d stopped=%v work=%d", x.id, x.part.Inc(), x.stopped, len(x.work))
		for _, id := range sortedKeys(x.ranks) {
			r := x.ranks[id]
			fmt.Fprintf(&b, "\n  rank %d step=%d epoch=%d want=%d running=%v ended=%v inbox=%d", r.id, r.prog.k, r.epoch, r.want, r.running, r.ended, len(r.inbox))
		}
	}
	fmt.Fprintf(&b, "\nframes in flight %d, control messages %d, round %d committed %d", len(w.data), len(w.ctl), w.coord.Round(), w.coord.Committed())
	return b.String()
}

// finished: every rank's program ended on a live host and nothing is
// being recovered. A copy stopped for its migration (frozen: its state
// is on its way, its new host may have it already) does not count: a rank
// between two hosts has not finished.
func (w *world) finished() bool {
	ended := map[int]bool{}
	for _, x := range w.hosts {
		if x.dead {
			continue
		}
		for id, r := range x.ranks {
			if !r.ended || !r.running {
				return false
			}
			if !r.frozen {
				ended[id] = true
			}
		}
	}
	return len(ended) == w.cfg.Ranks
}

// step does one thing, chosen by the seed.
func (w *world) step() error {
	switch k := w.rng.IntN(1000); {
	case k < 350:
		return w.runRank()
	case k < 600:
		return w.deliverData()
	case k < 720:
		return w.deliverCtl()
	case k < 900:
		return w.doWork()
	case k < 995:
		return w.tick()
	case k < 998:
		return w.migrate()
	default:
		return w.crash()
	}
}

type hostRank struct {
	x *host
	r *rank
}

func (w *world) liveRanks() []hostRank {
	var out []hostRank
	for _, x := range w.hosts {
		if x.dead || x.stopped {
			continue
		}
		for _, id := range sortedKeys(x.ranks) {
			out = append(out, hostRank{x, x.ranks[id]})
		}
	}
	return out
}

func (w *world) hostOf(r int) *host {
	for _, x := range w.hosts {
		if !x.dead && x.ranks[r] != nil {
			return x
		}
	}
	return nil
}

// runRank lets a rank go to its next capture point: first a capture that
// is due, else one step of its program.
func (w *world) runRank() error {
	rs := w.liveRanks()
	if len(rs) == 0 {
		return nil
	}
	hr := rs[w.rng.IntN(len(rs))]
	x, r := hr.x, hr.r
	if !r.running || r.frozen {
		return nil
	}
	if r.want > r.epoch && !r.ended {
		// It takes the oldest round its host has not had it take; one
		// after it is asked for again (Capture). An epoch its host takes
		// no more (or not yet: its MARKER is on the way) is asked no more:
		// it goes on, and a message stamped with it asks again.
		want, before := r.want, r.epoch
		r.want = r.epoch
		w.logf("h%d rank %d paused for e%d", x.id, r.id, want)
		x.part.Paused(r.id, want)
		if err := w.flush(x); err != nil {
			return err
		}
		if r.epoch == before && !x.part.Waits(r.id, want) {
			// Its round here was left: it goes on in that epoch all the
			// same, as the drivers move it (Endpoint.SetEpoch), so that
			// messages stamped with it reach it.
			w.logf("h%d rank %d moves on to e%d", x.id, r.id, want)
			r.epoch = want
		}
		return nil
	}
	if r.halt {
		return w.halt(x, r)
	}
	if r.ended {
		return nil
	}
	if err := w.runsOnce(x, r); err != nil {
		return err
	}
	n := w.cfg.Ranks
	dst, src := peers(r.id, r.prog.k, n)
	if !r.prog.sent {
		p := payloadOf(r.prog.acc, r.id, r.prog.k)
		if !r.senders[dst].Send(w.now, int32(r.prog.k), r.epoch, p) {
			return fmt.Errorf("rank %d: send window full", r.id)
		}
		r.prog.sent = true
		w.sendFrames(x, r.senders[dst].Ready())
	}
	i := slices.IndexFunc(r.inbox, func(f transport.Frame) bool { return int(f.Src) == src && f.Tag == int32(r.prog.k) })
	if i < 0 {
		return nil // waiting for a message: a capture point
	}
	f := r.inbox[i]
	r.inbox = slices.Delete(r.inbox, i, i+1)
	if want := w.payloads[src][r.prog.k]; string(f.Payload) != string(want) {
		return fmt.Errorf("rank %d step %d consumed %x from rank %d (seq %d), want %x", r.id, r.prog.k, f.Payload, src, f.Seq, want)
	}
	r.prog.acc = mix(r.prog.acc, binary.LittleEndian.Uint64(f.Payload))
	r.dirty += stepWrites
	line := lineOf(r.id, r.prog.k, r.prog.acc)
	r.file = append(r.file, line)
	if err := w.print(x, r.id, r.prog.k, line); err != nil {
		return err
	}
	r.prog.k++
	r.prog.sent = false
	if r.prog.k == w.cfg.Steps {
		r.ended = true
		w.logf("h%d rank %d ended", x.id, r.id)
		x.part.Ended(r.id)
		return w.flush(x)
	}
	return nil
}

// print hands a line to the submitter, which keeps each rank's output by
// line number: a line printed again after a rollback must be the same and
// is dropped; a gap is an error; a line from a host outside the job's
// incarnation is dropped.
func (w *world) print(x *host, r, idx int, line string) error {
	if x.part.Inc() != w.coord.Inc() || !w.coord.Live(ckpt.HostID(x.id)) {
		return nil
	}
	switch out := w.out[r]; {
	case idx < len(out):
		if out[idx] != line {
			return fmt.Errorf("rank %d printed %q again as %q", r, out[idx], line)
		}
	case idx == len(out):
		w.out[r] = append(out, line)
	default:
		return fmt.Errorf("rank %d printed line %d after %d lines: output lost", r, idx, len(out))
	}
	return nil
}

func (w *world) sendFrames(x *host, fs []transport.Frame) {
	for _, f := range fs {
		if f.Type == transport.FrameData {
			f.Payload = append([]byte(nil), f.Payload...)
		}
		to := x.route[f.Dst] // an ack goes to the sender's host
		if f.Type == transport.FrameAck {
			to = x.route[f.Src]
		}
		w.data = append(w.data, dataFrame{inc: x.part.Inc(), from: x.id, to: int(to), f: f})
	}
}

// deliverData hands a frame in flight to its rank: in order on each
// channel, or with faults any one (reordering), sometimes lost or
// duplicated.
func (w *world) deliverData() error {
	if len(w.data) == 0 {
		return nil
	}
	i := w.rng.IntN(len(w.data))
	if !w.cfg.Faults { // in order on each channel
		f := w.data[i].f
		i = slices.IndexFunc(w.data, func(d dataFrame) bool { return d.f.Type == f.Type && d.f.Src == f.Src && d.f.Dst == f.Dst })
	}
	d := w.data[i]
	// Frames go to the host the sender's host routes to: one that reaches
	// a host the rank left (or has not reached yet) is lost there, and
	// comes again from the sender's log.
	x := w.hosts[d.to]
	owner := int(d.f.Dst)
	if d.f.Type == transport.FrameAck {
		owner = int(d.f.Src)
	}
	if x.dead || x.ranks[owner] == nil {
		x = nil
	}
	if x != nil && d.f.Type == transport.FrameData {
		if r := x.ranks[int(d.f.Dst)]; r.running && x.part.Inc() == d.inc &&
			d.f.Epoch > r.epoch && d.f.Seq > r.recvs[d.f.Src].Delivered() {
			// Stamped with a later epoch: the rank takes that checkpoint
			// before it may have the message, which waits for it.
			r.want = max(r.want, d.f.Epoch)
			return nil
		}
	}
	switch {
	case w.cfg.Faults && w.rng.IntN(10) == 0:
		w.data = slices.Delete(w.data, i, i+1) // lost
		return nil
	case w.cfg.Faults && w.rng.IntN(10) == 0: // duplicated: stays in flight
	default:
		w.data = slices.Delete(w.data, i, i+1)
	}
	if x == nil || x.stopped || x.part.Inc() != d.inc {
		return nil // to a dead host, or from another incarnation
	}
	if d.f.Type == transport.FrameAck {
		r := x.ranks[int(d.f.Src)]
		if int(x.route[d.f.Dst]) != d.from {
			// From a host the receiver left: its ack may cover messages the
			// receiver's new host lacks (they came after its state left), and
			// would stop their retransmission from the log.
			return nil
		}
		if r.running { // a rank stopped for its migration still takes acks, as its Endpoint does
			r.senders[d.f.Dst].OnAck(d.f.Cum)
			r.senders[d.f.Dst].OnCut(d.f.Cum, d.f.Cut)
			r.senders[d.f.Dst].Stable(d.f.Stable)
		}
		return nil
	}
	r := x.ranks[int(d.f.Dst)]
	if !r.running {
		return nil
	}
	// A rank stopped for its migration still receives here, as its
	// Endpoint does until the route changes, but acks nothing once its
	// last state was taken: what it takes after that must come again from
	// the senders' logs.
	deliver, ack := r.recvs[d.f.Src].OnData(d.f)
	for _, f := range deliver {
		r.inbox = append(r.inbox, f)
	}
	switch {
	case r.left:
		// Its state left: an ack could cover messages that state lacks,
		// and stop their retransmission if it reached the sender late,
		// once the rank is back here (the route check lets it through).
		ack = nil
	case ack != nil:
		// Its next cut takes what it has: the ack says so, and the
		// sender's checkpoints of that epoch on do not log it.
		ack = r.recvs[d.f.Src].AckIn(r.epoch)
	}
	if ack != nil {
		w.sendFrames(x, []transport.Frame{*ack})
	}
	return nil
}

// deliverCtl delivers a control message: in order between each pair of
// hosts, as on their control connection.
func (w *world) deliverCtl() error {
	if len(w.ctl) == 0 {
		return nil
	}
	m := w.ctl[w.rng.IntN(len(w.ctl))]
	i := slices.IndexFunc(w.ctl, func(o ckpt.Msg) bool { return o.From == m.From && o.To == m.To })
	m = w.ctl[i]
	w.ctl = slices.Delete(w.ctl, i, i+1)
	to := w.hosts[m.To]
	if to.dead || w.hosts[m.From].dead && int(m.From) == w.coordID {
		return nil
	}
	w.logf("deliver %s", m)
	if int(m.To) == w.coordID && m.Kind.ToCoordinator() {
		w.coord.Step(m, w.now)
		return w.flushCoord()
	}
	to.part.Step(m, w.now)
	return w.flush(to)
}

// tick lets time pass: retransmissions, keep-alives between live hosts,
// failure detection and the checkpoint timer.
// maxQueued is how many DATA frames of a channel may be in flight before
// its sender stops retransmitting into it.
const maxQueued = 2

func (w *world) tick() error {
	w.now = w.now.Add(time.Duration(20+w.rng.IntN(200)) * time.Millisecond)
	coordUp := !w.hosts[w.coordID].dead
	// As the Endpoint does, a channel whose frames still wait to go is
	// not retransmitted into: resending only lengthens the queue.
	queued := map[[2]uint32]int{}
	for _, d := range w.data {
		if d.f.Type == transport.FrameData {
			queued[[2]uint32{d.f.Src, d.f.Dst}]++
		}
	}
	for _, x := range w.hosts {
		if x.dead || x.stopped {
			continue
		}
		for _, id := range sortedKeys(x.ranks) {
			r := x.ranks[id]
			if !r.running {
				continue
			}
			for dst, s := range r.senders {
				if queued[[2]uint32{uint32(id), uint32(dst)}] < maxQueued {
					w.sendFrames(x, s.Tick(w.now))
				}
			}
		}
		if coordUp && w.coord.Live(ckpt.HostID(x.id)) {
			w.coord.Heard(ckpt.HostID(x.id), w.now)
			x.part.Heard(w.now)
		}
	}
	if coordUp {
		w.coord.Tick(w.now)
		if err := w.flushCoord(); err != nil {
			return err
		}
	}
	for _, x := range w.hosts {
		if !x.dead {
			x.part.Tick(w.now)
			if err := w.flush(x); err != nil {
				return err
			}
		}
	}
	if coordUp && !w.now.Before(w.nextTrig) {
		w.nextTrig = w.now.Add(checkEvery)
		if e := w.coord.Trigger(); e != 0 {
			w.logf("trigger e%d", e)
		}
		return w.flushCoord()
	}
	return nil
}

// crash kills a live host other than the coordinator's, with its store.
func (w *world) crash() error {
	if w.res.Crashed >= w.cfg.Crashes || w.ending {
		return nil
	}
	var cands []*host
	for _, x := range w.hosts {
		if !x.dead && (x.id != w.coordID || w.cfg.Coordinator) {
			cands = append(cands, x)
		}
	}
	if len(cands) == 0 {
		return nil
	}
	x := cands[w.rng.IntN(len(cands))]
	if t := w.migrationTarget(); t != nil && slices.Contains(cands, t) && w.rng.IntN(2) == 0 {
		x = t // a target dies mid-migration
	}
	if w.migrationTarget() == x {
		w.res.TargetDied++
	}
	x.dead = true
	x.ranks, x.store, x.work = nil, nil, nil
	w.res.Crashed++
	w.logf("crash h%d", x.id)
	return nil
}

func sortedKeys[V any](m map[int]V) []int {
	ks := make([]int, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}
