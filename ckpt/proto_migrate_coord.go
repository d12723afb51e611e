package ckpt

import (
	"fmt"
	"maps"
	"slices"
)

// The coordinator's side of migrations and drains (proto_migrate.go).

// migCoord is what the coordinator knows of the migrations under way.
type migCoord struct {
	migs      map[int]*coordMig // by rank
	switching int               // migrations sent SWITCH and not ended: no round begins
	deferred  bool              // a round is due once no switch is under way
	draining  []bool            // hosts that take no new ranks
	drains    []bool            // hosts whose drain is under way
}

type coordMig struct {
	rank     int
	from, to HostID
	phase    migPhase
	drain    bool // moved by a drain of from
}

func (c *EpochCoordinator) migInit() *migCoord {
	if c.mig.migs == nil {
		c.mig.migs = map[int]*coordMig{}
		c.mig.draining = make([]bool, len(c.live))
		c.mig.drains = make([]bool, len(c.live))
	}
	return &c.mig
}

// Migrate moves rank to host to while the job runs. It is refused, in one
// line wrapping ErrMigrate, for a rank or host the job lacks, a dead or
// draining target, a rank that runs there already or is moving, and while
// the job rolls back. How it ends is an ActMigrated.
func (c *EpochCoordinator) Migrate(rank int, to HostID) error {
	m := c.migInit()
	switch {
	case c.stopped:
		return fmt.Errorf("%w: the job has stopped", ErrMigrate)
	case rank < 0 || rank >= len(c.place):
		return fmt.Errorf("%w: the job has ranks 0 to %d, not %d", ErrMigrate, len(c.place)-1, rank)
	case to < 0 || int(to) >= len(c.live):
		return fmt.Errorf("%w: host h%d is not among the job's %d hosts", ErrMigrate, to, len(c.live))
	case !c.live[to]:
		return fmt.Errorf("%w: host h%d is lost to the job", ErrMigrate, to)
	case m.draining[to]:
		return fmt.Errorf("%w: host h%d is draining: it takes no new ranks until undrain", ErrMigrate, to)
	case c.place[rank] == to:
		return fmt.Errorf("%w: rank %d already runs on h%d", ErrMigrate, rank, to)
	case m.migs[rank] != nil:
		return fmt.Errorf("%w: rank %d is already moving to h%d", ErrMigrate, rank, m.migs[rank].to)
	case c.recovering:
		return fmt.Errorf("%w: the job is rolling back after a host's loss: migrate again once it runs", ErrMigrate)
	}
	c.startMig(rank, to, false)
	return nil
}

func (c *EpochCoordinator) startMig(rank int, to HostID, drain bool) {
	from := c.place[rank]
	c.mig.migs[rank] = &coordMig{rank: rank, from: from, to: to, drain: drain}
	c.send(Msg{Kind: MsgMigrate, To: from, Rank: rank, Host: to})
}

// Migrating returns the host rank is moving to, if it is.
func (c *EpochCoordinator) Migrating(rank int) (HostID, bool) {
	if mg := c.mig.migs[rank]; mg != nil {
		return mg.to, true
	}
	return 0, false
}

// Draining reports whether host h takes no new ranks.
func (c *EpochCoordinator) Draining(h HostID) bool {
	return int(h) < len(c.mig.draining) && h >= 0 && c.mig.draining[h]
}

// Drain moves every rank off host h, one after another, and h takes no
// new ranks until Undrain. An ActDrained says when the last rank left (or
// why the drain stopped).
func (c *EpochCoordinator) Drain(h HostID) error {
	m := c.migInit()
	switch {
	case c.stopped:
		return fmt.Errorf("%w: the job has stopped", ErrMigrate)
	case h < 0 || int(h) >= len(c.live):
		return fmt.Errorf("%w: host h%d is not among the job's %d hosts", ErrMigrate, h, len(c.live))
	case !c.live[h]:
		return fmt.Errorf("%w: host h%d is lost to the job", ErrMigrate, h)
	}
	m.draining[h], m.drains[h] = true, true
	c.migNext()
	return nil
}

// Undrain lets host h take ranks again; a drain of h under way stops once
// its current migration ends.
func (c *EpochCoordinator) Undrain(h HostID) error {
	m := c.migInit()
	if h < 0 || int(h) >= len(c.live) {
		return fmt.Errorf("%w: host h%d is not among the job's %d hosts", ErrMigrate, h, len(c.live))
	}
	if m.drains[h] {
		m.drains[h] = false
		c.ready.act(Action{Kind: ActDrained, Host: h, Err: "undrained before every rank left"})
	}
	m.draining[h] = false
	return nil
}

// holdRound reports whether a round may not begin now, because a switch
// is under way; the round begins when it ends.
func (c *EpochCoordinator) holdRound() bool {
	if c.mig.switching > 0 {
		c.mig.deferred = true
		return true
	}
	return false
}

func (c *EpochCoordinator) stepMigrate(m Msg) {
	mg := c.mig.migs[m.Rank]
	if mg == nil || m.From != mg.from || m.Host != mg.to {
		return
	}
	switch m.Kind {
	case MsgCopied:
		if mg.phase == migCopying {
			mg.phase = migCopied
			c.migNext()
		}
	case MsgMoved:
		if mg.phase != migSwitching {
			return
		}
		c.endMig(mg)
		c.place[mg.rank] = mg.to
		for h := range c.live {
			if c.live[h] {
				c.send(Msg{Kind: MsgRoute, To: HostID(h), Rank: mg.rank, Host: mg.to, Epoch: m.Epoch,
					Ended: m.Ended, Place: slices.Clone(c.place)})
			}
		}
		c.ready.act(Action{Kind: ActMigrated, Rank: mg.rank, Host: mg.to})
		// The new placement is committed, and replicated, by a round at
		// once: until then a rollback places the rank on its source.
		c.mig.deferred = true
		c.afterSwitch()
	case MsgMigFailed:
		c.endMig(mg)
		c.ready.act(Action{Kind: ActMigrated, Rank: mg.rank, Host: mg.to, Err: m.Err})
		if mg.drain && c.mig.drains[mg.from] {
			c.mig.drains[mg.from] = false
			c.ready.act(Action{Kind: ActDrained, Host: mg.from, Err: fmt.Sprintf("rank %d: %s", mg.rank, m.Err)})
		}
		c.afterSwitch()
	}
}

func (c *EpochCoordinator) endMig(mg *coordMig) {
	if mg.phase == migSwitching {
		c.mig.switching--
	}
	delete(c.mig.migs, mg.rank)
}

// afterSwitch begins the round put off by a switch, once none is under
// way, and the next migrations.
func (c *EpochCoordinator) afterSwitch() {
	if c.mig.switching == 0 && c.mig.deferred {
		c.mig.deferred = false
		c.Trigger()
	}
	c.migNext()
}

// migNext sends SWITCH to the migrations that converged, if no round is
// under way, and starts the next migration of each drain.
func (c *EpochCoordinator) migNext() {
	m := &c.mig
	if c.stopped || c.recovering || m.migs == nil {
		return
	}
	if len(c.rounds) == 0 {
		for _, r := range slices.Sorted(maps.Keys(m.migs)) {
			if mg := m.migs[r]; mg.phase == migCopied {
				mg.phase = migSwitching
				m.switching++
				c.send(Msg{Kind: MsgSwitch, To: mg.from, Rank: r, Host: mg.to})
			}
		}
	}
	for d, on := range m.drains {
		if on {
			c.drainNext(HostID(d))
		}
	}
}

// drainNext starts moving the next rank off d, unless one is moving.
func (c *EpochCoordinator) drainNext(d HostID) {
	m := &c.mig
	if !c.live[d] {
		m.drains[d] = false
		c.ready.act(Action{Kind: ActDrained, Host: d, Err: fmt.Sprintf("host h%d was lost: its ranks rolled back onto other hosts", d)})
		return
	}
	rank := -1
	for _, r := range slices.Sorted(maps.Keys(m.migs)) {
		if m.migs[r].from == d {
			return // one at a time
		}
	}
	for r, h := range c.place {
		if h == d {
			rank = r
			break
		}
	}
	if rank < 0 {
		m.drains[d] = false
		c.ready.act(Action{Kind: ActDrained, Host: d})
		return
	}
	to := c.drainTarget(d)
	if to < 0 {
		m.drains[d] = false
		c.ready.act(Action{Kind: ActDrained, Host: d, Err: fmt.Sprintf("no live host that is not draining can take rank %d", rank)})
		return
	}
	c.startMig(rank, to, true)
}

// drainTarget returns the live host, not draining and not d, that runs
// (or is being sent) the fewest ranks, the lowest on a tie; -1 if none.
func (c *EpochCoordinator) drainTarget(d HostID) HostID {
	load := make([]int, len(c.live))
	for _, h := range c.place {
		load[h]++
	}
	for _, mg := range c.mig.migs {
		load[mg.to]++
	}
	best := HostID(-1)
	for h := range c.live {
		if HostID(h) == d || !c.live[h] || c.mig.draining[h] {
			continue
		}
		if best < 0 || load[h] < load[best] {
			best = HostID(h)
		}
	}
	return best
}

// abortMigrations ends every migration under way as the job rolls back to
// the committed epoch.
func (c *EpochCoordinator) abortMigrations() {
	m := &c.mig
	for _, r := range slices.Sorted(maps.Keys(m.migs)) {
		mg := m.migs[r]
		to := fmt.Sprintf("epoch %d", c.committed)
		if c.committed == 0 {
			to = "its start"
		}
		c.ready.act(Action{Kind: ActMigrated, Rank: r, Host: mg.to,
			Err: fmt.Sprintf("a host was lost and the job rolls back to %s: the migration of rank %d is off", to, r)})
	}
	clear(m.migs)
	m.switching, m.deferred = 0, false
}

// notDraining returns the hosts of hs that take new ranks, or hs if none
// does (a rank restarts on a draining host rather than the job stopping).
func (c *EpochCoordinator) notDraining(hs []HostID) []HostID {
	out := slices.DeleteFunc(slices.Clone(hs), c.Draining)
	if len(out) == 0 {
		return hs
	}
	return out
}
