package ckpt

import (
	"fmt"
	"slices"
	"time"
)

// Participant is one host's core of a job over several hosts (proto.go):
// it turns the coordinator's messages into work for the host's ranks and
// their results into one DONE per epoch. One goroutine owns it.
type Participant struct {
	cfg   ProtoConfig
	host  HostID
	live  []bool
	inc   uint64
	place []HostID
	ranks map[int]*partRank // the ranks placed here

	round     uint64 // the epoch being captured here, 0 if none
	marked    uint64 // newest epoch whose MARKER came: DONE waits for it
	sent      bool   // DONE (or its failure) of round was sent
	doneOK    bool   // DONE of round was sent without an error: it may commit
	release   uint64 // epoch whose commit record is being written here
	committed uint64 // newest epoch known committed here

	heard      time.Time // the coordinator was last heard from
	recovering bool
	rolling    map[int]bool // ranks whose rollback is under way
	rollEpoch  uint64
	stopped    bool

	migs map[int]*srcMig // migrations of ranks off this host (proto_migrate_source.go)

	ready Ready
}

type partRank struct {
	epoch   uint64 // newest epoch it captured (or was rolled back to)
	asked   uint64 // newest epoch it was asked to capture
	ended   bool
	durable bool // its checkpoint of the round is durable here
	replied []HostID
	digest  Hash
}

// NewParticipant returns host's participant in a job.
func NewParticipant(cfg ProtoConfig, host HostID) (*Participant, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if host < 0 || int(host) >= cfg.Hosts {
		return nil, fmt.Errorf("ckpt: host %d is not among the job's %d hosts", host, cfg.Hosts)
	}
	p := &Participant{cfg: cfg, host: host, live: allLive(cfg.Hosts), inc: cfg.Inc,
		place: slices.Clone(cfg.Place), ranks: map[int]*partRank{}}
	for r, h := range p.place {
		if h == host {
			p.ranks[r] = &partRank{epoch: cfg.Committed, asked: cfg.Committed}
		}
	}
	p.committed = cfg.Committed
	return p, nil
}

// Ready returns, and forgets, the messages and actions due.
func (p *Participant) Ready() Ready { return p.ready.take() }

// Inc returns the incarnation this host runs as.
func (p *Participant) Inc() uint64 { return p.inc }

// Live returns which hosts this host counts alive.
func (p *Participant) Live() []bool { return slices.Clone(p.live) }

// Ranks returns the ranks placed on this host, in order.
func (p *Participant) Ranks() []int {
	out := make([]int, 0, len(p.ranks))
	for r := range p.ranks {
		out = append(out, r)
	}
	slices.Sort(out)
	return out
}

// Start records the time the job started here.
func (p *Participant) Start(now time.Time) { p.heard = now }

// Heard records traffic from the coordinator's host.
func (p *Participant) Heard(now time.Time) {
	if now.After(p.heard) {
		p.heard = now
	}
}

// Tick stops the job here if the coordinator's host has been silent for
// longer than the failure timeout, and fails the migrations off this host
// that made no progress for the migration timeout.
func (p *Participant) Tick(now time.Time) {
	if !p.stopped {
		p.tickMigrations(now)
	}
	if p.stopped || p.host == p.cfg.Coordinator || now.Sub(p.heard) <= p.cfg.FailureTimeout {
		return
	}
	p.stop(fmt.Sprintf("the coordinator's host h%d is lost: the job stops, its committed epochs kept", p.cfg.Coordinator))
}

// Step takes a message from the coordinator.
func (p *Participant) Step(m Msg, now time.Time) {
	if m.From != p.cfg.Coordinator || p.stopped {
		return
	}
	p.Heard(now)
	if m.Inc < p.inc {
		return // from an incarnation the job has left
	}
	switch m.Kind {
	case MsgRollback:
		if m.Inc > p.inc {
			p.rollback(m)
		}
		return
	case MsgStop:
		if m.Inc > p.inc {
			// The job went on to a new incarnation without this host.
			p.stopped = true
			p.ready.act(Action{Kind: ActStop, Err: m.Err, Lost: true})
			return
		}
		p.stop(m.Err)
		return
	}
	if m.Inc != p.inc {
		return
	}
	switch m.Kind {
	case MsgMarker:
		if !p.recovering {
			p.marker(m.Epoch)
		}
	case MsgCommit:
		if m.Record != nil && !p.recovering {
			p.release = m.Record.Epoch
			p.committed = max(p.committed, m.Record.Epoch)
			p.ready.act(Action{Kind: ActPersistCommit, Epoch: m.Record.Epoch, Record: m.Record})
		}
	case MsgResume:
		if p.recovering && len(p.rolling) == 0 {
			p.recovering = false
			p.ready.act(Action{Kind: ActResume, Inc: p.inc})
		}
	case MsgMigrate, MsgSwitch, MsgRoute:
		p.stepMigrate(m, now)
	}
}

// marker asks every rank here for a checkpoint of epoch e. The ranks here
// are those the coordinator placed here when it began the round: the
// ROUTE of a move comes before the MARKER of the round the move begins,
// so a rank adopted after the round began here (its other ranks paused
// for messages stamped e) is part of it too, an ended one as well.
func (p *Participant) marker(e uint64) {
	if e < p.round {
		return
	}
	if e > p.round {
		p.begin(e)
	}
	p.marked = e
	for _, r := range p.Ranks() {
		rk := p.ranks[r]
		switch {
		case rk.ended && rk.epoch < e:
			rk.epoch, rk.asked = e, e
			p.ready.act(Action{Kind: ActPersist, Rank: r, Epoch: e, Ended: true})
		case !rk.ended && rk.epoch < e && rk.asked < e:
			rk.asked = e
			p.ready.act(Action{Kind: ActCapture, Rank: r, Epoch: e})
		}
	}
	p.checkDone() // a host that runs no rank (all moved away) is done at once
}

// begin starts the round of epoch e here, abandoning an earlier one that
// cannot have committed (this host never said DONE for it; if it did, the
// coordinator may have committed it, so it stays until a later epoch
// commits). Ranks whose programs ended need no capture point.
func (p *Participant) begin(e uint64) {
	if p.round > p.committed && !p.doneOK {
		p.ready.act(Action{Kind: ActAbandon, Epoch: p.round})
	}
	p.round, p.sent, p.doneOK = e, false, false
	for _, r := range p.Ranks() {
		rk := p.ranks[r]
		rk.durable, rk.replied = false, nil
		if rk.ended {
			rk.epoch, rk.asked = e, e
			p.ready.act(Action{Kind: ActPersist, Rank: r, Epoch: e, Ended: true})
		}
	}
}

// Paused reports that rank stopped at a capture point for epoch e: asked
// by the marker, or before delivering a message stamped e. If the rank is
// to write its checkpoint, Ready holds a Persist for it; otherwise it goes
// on.
func (p *Participant) Paused(rank int, e uint64) {
	rk := p.ranks[rank]
	if rk == nil || p.recovering || p.stopped || e < p.round || rk.epoch >= e {
		return
	}
	if e > p.round {
		p.begin(e)
	}
	rk.epoch, rk.asked = e, max(rk.asked, e)
	p.ready.act(Action{Kind: ActPersist, Rank: rank, Epoch: e})
}

// Ended reports that rank's program ended. Its final state is its
// checkpoint in this round, if it had not captured it yet, and in every
// later one.
func (p *Participant) Ended(rank int) {
	rk := p.ranks[rank]
	if rk == nil || rk.ended {
		return
	}
	rk.ended = true
	if p.round != 0 && rk.epoch < p.round && !p.recovering {
		rk.epoch, rk.asked = p.round, p.round
		p.ready.act(Action{Kind: ActPersist, Rank: rank, Epoch: p.round, Ended: true})
	}
}

// Durable reports that rank's checkpoint of e is durable on this host,
// with its manifest's digest: it is replicated next.
func (p *Participant) Durable(rank int, e uint64, digest Hash) {
	rk := p.ranks[rank]
	if rk == nil || e != p.round || rk.epoch != e || rk.durable || p.sent {
		return
	}
	rk.durable, rk.digest = true, digest
	for _, to := range ReplicaHosts(p.host, p.live, p.cfg.Replicas) {
		p.ready.act(Action{Kind: ActReplicate, Rank: rank, Epoch: e, Host: to})
	}
	p.checkDone()
}

// Replicated reports that host to holds rank's checkpoint of e.
func (p *Participant) Replicated(rank int, e uint64, to HostID) {
	rk := p.ranks[rank]
	if rk == nil || e != p.round || !rk.durable || slices.Contains(rk.replied, to) {
		return
	}
	rk.replied = append(rk.replied, to)
	p.checkDone()
}

// Failed reports that rank's checkpoint of e could not be written or
// replicated: the host tells the coordinator, which abandons the round.
func (p *Participant) Failed(rank int, e uint64, err string) {
	if p.ranks[rank] == nil || e != p.round || p.sent || p.recovering {
		return
	}
	p.sent = true
	p.send(Msg{Kind: MsgDone, Epoch: e, Err: fmt.Sprintf("rank %d: %s", rank, err)})
}

// checkDone sends DONE once every rank here is durable and replicated for
// the round, and not before its MARKER came: until then a rank may still
// be moving here (its ROUTE is on the way), and a DONE without it would
// let the coordinator commit an epoch that lacks the rank's checkpoint.
func (p *Participant) checkDone() {
	if p.sent || p.marked < p.round {
		return
	}
	want := len(ReplicaHosts(p.host, p.live, p.cfg.Replicas))
	var ds []RankDigest
	for _, r := range p.Ranks() {
		rk := p.ranks[r]
		if rk.epoch != p.round || !rk.durable || len(rk.replied) < want {
			return
		}
		ds = append(ds, RankDigest{Rank: r, Digest: rk.digest})
	}
	p.sent, p.doneOK = true, true
	if ds == nil {
		ds = []RankDigest{}
	}
	p.send(Msg{Kind: MsgDone, Epoch: p.round, Digests: ds})
}

// CommitDurable reports that a commit record a COMMIT brought is durable
// here: the epoch's delivered messages are stable now.
func (p *Participant) CommitDurable(e uint64) {
	if e == 0 || e != p.release {
		return
	}
	p.release = 0
	p.ready.act(Action{Kind: ActRelease, Epoch: e})
}

// rollback makes this host's share of a new incarnation: its ranks go
// back to the committed epoch, ranks placed here anew restart from the
// replicas here, ranks moved away stop.
func (p *Participant) rollback(m Msg) {
	p.cancelMigrations()
	if p.round > max(p.committed, m.Epoch) {
		p.ready.act(Action{Kind: ActAbandon, Epoch: p.round})
	}
	p.inc, p.round, p.sent, p.doneOK, p.release, p.committed = m.Inc, 0, false, false, 0, m.Epoch
	p.recovering, p.rollEpoch = true, m.Epoch
	if len(m.Live) == len(p.live) {
		copy(p.live, m.Live)
	}
	old := p.place
	p.place = slices.Clone(m.Place)
	p.ready.act(Action{Kind: ActRoute, Inc: p.inc, Place: slices.Clone(p.place)})
	p.rolling = map[int]bool{}
	for r := range p.place {
		switch {
		case p.place[r] == p.host && old[r] == p.host:
			p.ready.act(Action{Kind: ActRollback, Rank: r, Epoch: m.Epoch})
		case p.place[r] == p.host:
			p.ranks[r] = &partRank{}
			p.ready.act(Action{Kind: ActRestore, Rank: r, Epoch: m.Epoch})
		case old[r] == p.host:
			delete(p.ranks, r)
			p.ready.act(Action{Kind: ActDrop, Rank: r})
			continue
		default:
			continue
		}
		p.rolling[r] = true
	}
	p.checkRecovered()
}

// RolledBack reports that rank is back at the rollback's epoch (restored
// here or rolled back), and whether its program had ended by then.
func (p *Participant) RolledBack(rank int, ended bool) {
	if !p.rolling[rank] {
		return
	}
	delete(p.rolling, rank)
	*p.ranks[rank] = partRank{epoch: p.rollEpoch, asked: p.rollEpoch, ended: ended}
	p.checkRecovered()
}

func (p *Participant) checkRecovered() {
	if p.recovering && len(p.rolling) == 0 {
		p.send(Msg{Kind: MsgRecovered})
	}
}

func (p *Participant) stop(err string) {
	p.stopped = true
	p.ready.act(Action{Kind: ActStop, Err: err})
}

func (p *Participant) send(m Msg) {
	m.From, m.To, m.Inc = p.host, p.cfg.Coordinator, p.inc
	p.ready.msg(m)
}
