package ckpt

import (
	"cmp"
	"fmt"
	"slices"
	"time"
)

// EpochCoordinator is the coordinator's core of a job over several hosts
// (proto.go). One goroutine owns it; every method may add to what Ready
// returns next.
type EpochCoordinator struct {
	cfg   ProtoConfig
	live  []bool
	heard []time.Time // when each host was last heard from
	inc   uint64
	place []HostID

	committed uint64     // newest committed epoch
	holders   [][]HostID // where each rank's checkpoint of committed is
	next      uint64     // epoch of the next round

	// The rounds under way, in epoch order: at most cfg.MaxRounds, their
	// epochs consecutive (a round that fails ends every later one too).
	rounds []*coordRound

	recovering bool
	recovered  []bool
	lost       []HostID // hosts lost since the last recovery began
	stopped    bool

	mig migCoord // migrations and drains (proto_migrate_coord.go)

	ready Ready
}

// coordRound is a round under way.
type coordRound struct {
	epoch   uint64
	done    []bool
	nDone   int
	digests []RankDigest
	holds   [][]HostID    // where the round's checkpoints are replicated to
	rec     *CommitRecord // the round's record, once every host is done
	writing bool          // its record is being written (only the oldest round's is)
	held    time.Duration // the longest a rank was held up by it (Done's Held)
}

// NewEpochCoordinator returns the coordinator of a job. Next is the epoch
// the next round takes (larger than any epoch begun before, committed or
// not); 0 means Committed+1.
func NewEpochCoordinator(cfg ProtoConfig, next uint64) (*EpochCoordinator, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	c := &EpochCoordinator{cfg: cfg, live: allLive(cfg.Hosts), heard: make([]time.Time, cfg.Hosts),
		inc: cfg.Inc, place: slices.Clone(cfg.Place), committed: cfg.Committed,
		next: max(next, cfg.Committed+1), recovered: make([]bool, cfg.Hosts)}
	if cfg.Committed > 0 {
		c.holders = cloneHolders(cfg.Holders)
	}
	return c, nil
}

// Ready returns, and forgets, the messages and actions due.
func (c *EpochCoordinator) Ready() Ready { return c.ready.take() }

// Committed returns the newest committed epoch.
func (c *EpochCoordinator) Committed() uint64 { return c.committed }

// Round returns the epoch of the newest round under way, 0 if none.
func (c *EpochCoordinator) Round() uint64 {
	if len(c.rounds) == 0 {
		return 0
	}
	return c.rounds[len(c.rounds)-1].epoch
}

// Rounds returns how many rounds are under way.
func (c *EpochCoordinator) Rounds() int { return len(c.rounds) }

// Busy reports whether no round may begin now because of the rounds
// under way: MaxRounds are, or the newest round begun failed while an
// earlier one is still under way. The rounds under way are always the
// newest ones begun, one after another, so that the oldest of them,
// which each MARKER names, tells a host that every earlier round that
// did not commit was abandoned. A round may begin once the oldest ends.
func (c *EpochCoordinator) Busy() bool {
	n := len(c.rounds)
	return n >= c.cfg.MaxRounds || n > 0 && c.rounds[n-1].epoch != c.next-1
}

// round returns the round of epoch e under way, nil if none.
func (c *EpochCoordinator) round(e uint64) (int, *coordRound) {
	for i, r := range c.rounds {
		if r.epoch == e {
			return i, r
		}
	}
	return -1, nil
}

// Inc returns the job's incarnation.
func (c *EpochCoordinator) Inc() uint64 { return c.inc }

// Place returns where each rank runs now.
func (c *EpochCoordinator) Place() []HostID { return slices.Clone(c.place) }

// Live reports whether host h is alive as far as the coordinator knows.
func (c *EpochCoordinator) Live(h HostID) bool { return c.live[h] }

// Start records the time the job started: every host counts as heard
// from then.
func (c *EpochCoordinator) Start(now time.Time) {
	for h := range c.heard {
		c.heard[h] = now
	}
}

// Resume starts a job again from its newest committed epoch (the
// config's Committed, Holders and Place, from its commit record) after
// the job stopped, as when its coordinator's host was lost: the hosts
// not in live are dead, their ranks move to live holders, and every live
// host rolls back as a new incarnation (the config's Inc must be the
// newest incarnation any host ran).
func (c *EpochCoordinator) Resume(live []bool, now time.Time) {
	c.Start(now)
	for h, l := range live {
		if !l {
			c.lose(HostID(h))
		}
	}
	c.recover()
}

// Trigger begins a round if fewer than MaxRounds are under way and the
// job runs, sending a MARKER to every live host; the MARKER names the
// oldest round still under way, so that a host learns that the rounds
// before it that did not commit were abandoned. It returns the round's
// epoch, or 0.
func (c *EpochCoordinator) Trigger() uint64 {
	if c.stopped || c.recovering || c.Busy() || c.holdRound() {
		return 0
	}
	r := &coordRound{epoch: c.next, done: make([]bool, len(c.live)), holds: holdersOf(c.place, c.live, c.cfg.Replicas)}
	c.next++
	c.rounds = append(c.rounds, r)
	for h := range c.live {
		if c.live[h] {
			c.send(Msg{Kind: MsgMarker, To: HostID(h), Epoch: r.epoch, Oldest: c.rounds[0].epoch})
		}
	}
	return r.epoch
}

// Heard records that host h was heard from (any traffic on its control
// connection).
func (c *EpochCoordinator) Heard(h HostID, now time.Time) {
	if c.live[h] && now.After(c.heard[h]) {
		c.heard[h] = now
	}
}

// Step takes a message from a participant.
func (c *EpochCoordinator) Step(m Msg, now time.Time) {
	if m.From < 0 || int(m.From) >= len(c.live) || !c.live[m.From] || c.stopped {
		return
	}
	c.Heard(m.From, now)
	if m.Inc != c.inc {
		return // from an incarnation the job has left
	}
	switch m.Kind {
	case MsgDone:
		c.stepDone(m)
	case MsgRecovered:
		c.stepRecovered(m)
	case MsgCopied, MsgMoved, MsgMigFailed:
		c.stepMigrate(m)
	}
}

func (c *EpochCoordinator) stepDone(m Msg) {
	i, r := c.round(m.Epoch)
	if r == nil || r.done[m.From] || r.rec != nil {
		return
	}
	if m.Err != "" {
		// Abandoned: the next MARKER tells the hosts.
		c.abandon(i, fmt.Sprintf("host h%d: %s", m.From, m.Err))
		c.migNext()
		return
	}
	r.done[m.From] = true
	r.nDone++
	r.digests = append(r.digests, m.Digests...)
	r.held = max(r.held, m.Held)
	if r.nDone < c.nLive() {
		return
	}
	slices.SortFunc(r.digests, func(a, b RankDigest) int { return cmp.Compare(a.Rank, b.Rank) })
	r.rec = &CommitRecord{Epoch: r.epoch, Inc: c.inc, Place: slices.Clone(c.place), Holders: r.holds, Digests: r.digests}
	c.writeNext()
}

// writeNext asks for the commit record of the oldest round, once every
// host is done with it: records are written one at a time, in epoch
// order, so that a round commits only after every earlier one did.
func (c *EpochCoordinator) writeNext() {
	if len(c.rounds) == 0 || c.rounds[0].rec == nil || c.rounds[0].writing {
		return
	}
	r := c.rounds[0]
	r.writing = true
	c.ready.act(Action{Kind: ActPersistCommit, Epoch: r.epoch, Record: r.rec, Held: r.held})
}

// abandon ends the round at index i and every later one: a later round's
// checkpoints may rest on the failed one's (an incremental capture takes
// the chunks it did not change from it), so none of them may commit.
func (c *EpochCoordinator) abandon(i int, why string) {
	for k, r := range c.rounds[i:] {
		err := why
		if k > 0 {
			err = fmt.Sprintf("the round of epoch %d before it failed (%s)", c.rounds[i].epoch, why)
		}
		c.ready.act(Action{Kind: ActAbandon, Epoch: r.epoch, Err: err})
	}
	c.rounds = c.rounds[:i]
}

// CommitDurable reports that the commit record of epoch is durable on the
// coordinator's host: the epoch is committed, and every live host is told.
func (c *EpochCoordinator) CommitDurable(epoch uint64) {
	if len(c.rounds) == 0 || !c.rounds[0].writing || epoch != c.rounds[0].epoch || c.stopped {
		return
	}
	rec := c.rounds[0].rec
	c.committed, c.holders = epoch, cloneHolders(rec.Holders)
	c.rounds = c.rounds[1:]
	for h := range c.live {
		if c.live[h] {
			c.send(Msg{Kind: MsgCommit, To: HostID(h), Epoch: epoch, Record: rec})
		}
	}
	c.afterWrite()
	c.writeNext()
	c.migNext()
}

// CommitFailed reports that the commit record of epoch could not be
// written: the round is abandoned, and every later one.
func (c *EpochCoordinator) CommitFailed(epoch uint64) {
	if len(c.rounds) == 0 || !c.rounds[0].writing || epoch != c.rounds[0].epoch {
		return
	}
	c.abandon(0, "its commit record could not be written")
	c.afterWrite()
	c.migNext()
}

// afterWrite starts the recovery that a host's loss during the commit
// record's write put off.
func (c *EpochCoordinator) afterWrite() {
	if len(c.lost) > 0 {
		c.recover()
	}
}

// Tick declares dead every host silent for longer than the failure
// timeout (never the coordinator's own).
func (c *EpochCoordinator) Tick(now time.Time) {
	any := false
	for h := range c.live {
		if c.live[h] && now.Sub(c.heard[h]) > c.cfg.FailureTimeout {
			any = c.lose(HostID(h)) || any
		}
	}
	if any {
		c.afterLoss()
	}
}

// HostLost declares host h dead (its connection failed for good, or it was
// silent too long): the job rolls back to the newest committed epoch as a
// new incarnation, without h.
func (c *EpochCoordinator) HostLost(h HostID) {
	if c.lose(h) {
		c.afterLoss()
	}
}

func (c *EpochCoordinator) lose(h HostID) bool {
	if h < 0 || int(h) >= len(c.live) || !c.live[h] || h == c.cfg.Coordinator || c.stopped {
		return false
	}
	c.live[h] = false
	c.lost = append(c.lost, h)
	return true
}

func (c *EpochCoordinator) afterLoss() {
	if len(c.rounds) > 0 && c.rounds[0].writing {
		// Every checkpoint of the round is durable and replicated: once its
		// record is written, the round counts and the job rolls back to it.
		return
	}
	c.recover()
}

// recover starts a new incarnation: ranks of dead hosts go to live hosts
// that hold their committed checkpoints, and every live host rolls back.
func (c *EpochCoordinator) recover() {
	c.abortMigrations()
	c.inc++
	c.rounds, c.recovering = nil, true
	clear(c.recovered)
	for _, h := range c.lost {
		c.ready.act(Action{Kind: ActRecover, Host: h, Inc: c.inc, Epoch: c.committed})
	}
	lost := c.lost
	c.lost = nil
	place, err := c.replace()
	if err != "" {
		c.stop(err)
		return
	}
	c.place = place
	for h := range c.live {
		if c.live[h] {
			c.send(Msg{Kind: MsgRollback, To: HostID(h), Epoch: c.committed,
				Place: slices.Clone(place), Live: slices.Clone(c.live)})
		}
	}
	// A host declared lost may be alive (stalled, or cut off for a
	// while): told, it stops its part, which the new incarnation runs
	// elsewhere.
	for _, h := range lost {
		c.send(Msg{Kind: MsgStop, To: h, Err: "this host was declared lost by the job's coordinator (not heard from within the failure timeout, or its connection failed): the job goes on without it"})
	}
}

// replace returns the placement of the new incarnation: a rank whose host
// is dead, or does not hold its committed checkpoint (it migrated since),
// moves to the live host holding that checkpoint that runs the fewest
// ranks (lowest ID on a tie), a draining host only if no other holds it;
// with nothing committed, to the live host running the fewest ranks.
func (c *EpochCoordinator) replace() ([]HostID, string) {
	place := slices.Clone(c.place)
	load := make([]int, len(c.live))
	stays := func(r int, h HostID) bool {
		return c.live[h] && (c.committed == 0 || slices.Contains(c.holders[r], h))
	}
	for r, h := range place {
		if stays(r, h) {
			load[h]++
		}
	}
	for r, h := range place {
		if stays(r, h) {
			continue
		}
		var cands []HostID
		if c.committed == 0 {
			for o := range c.live {
				if c.live[o] {
					cands = append(cands, HostID(o))
				}
			}
		} else {
			for _, o := range c.holders[r] {
				if c.live[o] {
					cands = append(cands, o)
				}
			}
		}
		if len(cands) == 0 {
			return nil, fmt.Sprintf("rank %d's checkpoint of epoch %d is on no live host", r, c.committed)
		}
		cands = c.notDraining(cands)
		best := cands[0]
		for _, o := range cands[1:] {
			if load[o] < load[best] || (load[o] == load[best] && o < best) {
				best = o
			}
		}
		place[r] = best
		load[best]++
	}
	return place, ""
}

func (c *EpochCoordinator) stepRecovered(m Msg) {
	if !c.recovering || c.recovered[m.From] {
		return
	}
	c.recovered[m.From] = true
	for h := range c.live {
		if c.live[h] && !c.recovered[h] {
			return
		}
	}
	c.recovering = false
	for h := range c.live {
		if c.live[h] {
			c.send(Msg{Kind: MsgResume, To: HostID(h)})
		}
	}
	// The ranks that moved have their checkpoint on fewer hosts than the
	// job asks for: a round at once makes the replicas again.
	c.Trigger()
	c.migNext() // drains go on
}

// Stop ends the job on every live host with err.
func (c *EpochCoordinator) Stop(err string) {
	if !c.stopped {
		c.stop(err)
	}
}

func (c *EpochCoordinator) stop(err string) {
	c.stopped = true
	for h := range c.live {
		if c.live[h] {
			c.send(Msg{Kind: MsgStop, To: HostID(h), Err: err})
		}
	}
}

func (c *EpochCoordinator) send(m Msg) {
	m.From, m.Inc = c.cfg.Coordinator, c.inc
	c.ready.msg(m)
}

func (c *EpochCoordinator) nLive() int {
	n := 0
	for _, l := range c.live {
		if l {
			n++
		}
	}
	return n
}

func cloneHolders(hs [][]HostID) [][]HostID {
	out := make([][]HostID, len(hs))
	for i, h := range hs {
		out[i] = slices.Clone(h)
	}
	return out
}
