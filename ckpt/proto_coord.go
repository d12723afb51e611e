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

	round   uint64 // epoch of the round under way, 0 if none
	done    []bool
	nDone   int
	digests []RankDigest
	holds   [][]HostID    // where the round's checkpoints are replicated to
	rec     *CommitRecord // the round's record, once every host is done

	recovering bool
	recovered  []bool
	lost       []HostID // hosts lost since the last recovery began
	stopped    bool

	mig migCoord // migrations and drains (proto_migrate_coord.go)

	ready Ready
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
		next: max(next, cfg.Committed+1), done: make([]bool, cfg.Hosts), recovered: make([]bool, cfg.Hosts)}
	if cfg.Committed > 0 {
		c.holders = cloneHolders(cfg.Holders)
	}
	return c, nil
}

// Ready returns, and forgets, the messages and actions due.
func (c *EpochCoordinator) Ready() Ready { return c.ready.take() }

// Committed returns the newest committed epoch.
func (c *EpochCoordinator) Committed() uint64 { return c.committed }

// Round returns the epoch of the round under way, 0 if none.
func (c *EpochCoordinator) Round() uint64 { return c.round }

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

// Trigger begins a round if none is under way and the job runs, sending
// a MARKER to every live host. It returns the round's epoch, or 0.
func (c *EpochCoordinator) Trigger() uint64 {
	if c.stopped || c.recovering || c.round != 0 || c.holdRound() {
		return 0
	}
	c.round = c.next
	c.next++
	c.nDone, c.digests, c.rec = 0, nil, nil
	c.holds = holdersOf(c.place, c.live, c.cfg.Replicas)
	clear(c.done)
	for h := range c.live {
		if c.live[h] {
			c.send(Msg{Kind: MsgMarker, To: HostID(h), Epoch: c.round})
		}
	}
	return c.round
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
	if m.Epoch != c.round || c.done[m.From] || c.rec != nil {
		return
	}
	if m.Err != "" {
		// Abandoned: the next MARKER tells the hosts.
		c.ready.act(Action{Kind: ActAbandon, Epoch: c.round, Err: fmt.Sprintf("host h%d: %s", m.From, m.Err)})
		c.round = 0
		c.migNext()
		return
	}
	c.done[m.From] = true
	c.nDone++
	c.digests = append(c.digests, m.Digests...)
	if c.nDone < c.nLive() {
		return
	}
	slices.SortFunc(c.digests, func(a, b RankDigest) int { return cmp.Compare(a.Rank, b.Rank) })
	c.rec = &CommitRecord{Epoch: c.round, Inc: c.inc, Place: slices.Clone(c.place), Holders: c.holds, Digests: c.digests}
	c.ready.act(Action{Kind: ActPersistCommit, Epoch: c.round, Record: c.rec})
}

// CommitDurable reports that the commit record of epoch is durable on the
// coordinator's host: the epoch is committed, and every live host is told.
func (c *EpochCoordinator) CommitDurable(epoch uint64) {
	if c.rec == nil || epoch != c.round || c.stopped {
		return
	}
	rec := c.rec
	c.committed, c.holders = epoch, cloneHolders(rec.Holders)
	c.round, c.rec = 0, nil
	for h := range c.live {
		if c.live[h] {
			c.send(Msg{Kind: MsgCommit, To: HostID(h), Epoch: epoch, Record: rec})
		}
	}
	c.afterWrite()
	c.migNext()
}

// CommitFailed reports that the commit record of epoch could not be
// written: the round is abandoned.
func (c *EpochCoordinator) CommitFailed(epoch uint64) {
	if c.rec == nil || epoch != c.round {
		return
	}
	c.round, c.rec = 0, nil
	c.ready.act(Action{Kind: ActAbandon, Epoch: epoch, Err: "its commit record could not be written"})
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
	if c.rec != nil {
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
	c.round, c.recovering = 0, true
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
