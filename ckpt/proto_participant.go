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

	// The rounds begun here, in epoch order, that did not commit and are
	// not known to be abandoned: more than one with MaxRounds > 1.
	rounds    []*partRound
	last      uint64    // newest epoch begun here in this incarnation
	marked    uint64    // newest epoch whose MARKER came in this incarnation
	releasing []relWait // commit records being written here, in epoch order
	committed uint64    // newest epoch known committed here

	heard      time.Time // the coordinator was last heard from
	recovering bool
	rolling    map[int]bool // ranks whose rollback is under way
	rollEpoch  uint64
	stopped    bool

	migs map[int]*srcMig // migrations of ranks off this host (proto_migrate_source.go)

	ready Ready
}

// partRank is a rank placed here. It takes the rounds in epoch order:
// it is asked for a round once it took every earlier one.
type partRank struct {
	epoch uint64 // newest epoch it captured (or was rolled back to)
	asked uint64 // newest epoch it was asked to capture
	ended bool
}

// partRound is a round begun here.
type partRound struct {
	epoch  uint64
	marked bool // its MARKER came: DONE waits for it
	sent   bool // DONE (or its failure) was sent
	doneOK bool // DONE was sent without an error: it may commit
	ranks  map[int]*roundRank
}

// roundRank is a rank's checkpoint of a round, once the rank took it.
type roundRank struct {
	durable bool // durable here
	replied []HostID
	digest  Hash
	held    time.Duration // how long the checkpoint held the rank up
}

// relWait is a commit record being written here: Release follows in
// epoch order.
type relWait struct {
	epoch   uint64
	durable bool
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
			p.marker(m.Epoch, cmpOr(m.Oldest, m.Epoch))
		}
	case MsgCommit:
		if m.Record != nil && !p.recovering {
			p.commit(m.Record)
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
// for messages stamped e) is part of it too, an ended one as well. The
// rounds before oldest that did not commit were abandoned.
func (p *Participant) marker(e, oldest uint64) {
	if e <= p.marked {
		return
	}
	pr := p.begin(e, oldest)
	if pr == nil {
		return
	}
	pr.marked, p.marked = true, e
	for _, r := range p.Ranks() {
		rk := p.ranks[r]
		for n := p.next(rk); rk.ended && n != nil && n.epoch <= e; n = p.next(rk) {
			p.take(r, n, true) // adopted after the round began here
		}
		p.ask(r)
	}
	p.checkDone(pr) // a host that runs no rank (all moved away) is done at once
}

// begin starts the round of epoch e here, if it is not under way here,
// after ending the rounds before oldest: those that cannot have committed
// (this host never said DONE for them) are abandoned; one it said DONE
// for may have been committed by the coordinator, so it stays until a
// later epoch commits. Ranks whose programs ended need no capture point.
// It returns the round (nil: e is older than a round begun here).
func (p *Participant) begin(e, oldest uint64) *partRound {
	keep := p.rounds[:0]
	for _, pr := range p.rounds {
		switch {
		case pr.epoch >= oldest:
			keep = append(keep, pr)
		case pr.epoch > p.committed && !pr.doneOK:
			p.ready.act(Action{Kind: ActAbandon, Epoch: pr.epoch})
		}
	}
	clear(p.rounds[len(keep):])
	p.rounds = keep
	if pr := p.round(e); pr != nil {
		return pr
	}
	if e <= p.last {
		return nil
	}
	pr := &partRound{epoch: e, ranks: map[int]*roundRank{}}
	p.rounds = append(p.rounds, pr)
	p.last = e
	for _, r := range p.Ranks() {
		if rk := p.ranks[r]; rk.ended && rk.epoch < e {
			p.take(r, pr, true)
		}
	}
	return pr
}

// round returns the round of epoch e under way here, nil if none.
func (p *Participant) round(e uint64) *partRound {
	for _, pr := range p.rounds {
		if pr.epoch == e {
			return pr
		}
	}
	return nil
}

// next returns the oldest round here that rank rk has not taken, nil if
// none.
func (p *Participant) next(rk *partRank) *partRound {
	for _, pr := range p.rounds {
		if pr.epoch > rk.epoch {
			return pr
		}
	}
	return nil
}

// take makes rank's checkpoint of pr, which it takes now, part of the
// round: Persist writes it.
func (p *Participant) take(rank int, pr *partRound, ended bool) {
	rk := p.ranks[rank]
	rk.epoch, rk.asked = pr.epoch, max(rk.asked, pr.epoch)
	pr.ranks[rank] = &roundRank{}
	p.ready.act(Action{Kind: ActPersist, Rank: rank, Epoch: pr.epoch, Ended: ended})
}

// ask asks rank for the oldest round here it has not taken, unless it
// was asked already: a rank takes the rounds in epoch order.
func (p *Participant) ask(rank int) {
	rk := p.ranks[rank]
	if rk.ended {
		return
	}
	if pr := p.next(rk); pr != nil && rk.asked < pr.epoch {
		rk.asked = pr.epoch
		p.ready.act(Action{Kind: ActCapture, Rank: rank, Epoch: pr.epoch})
	}
}

// mayBegin reports whether a rank here may take epoch e, newer than every
// round begun here, before e's MARKER came (a message stamped e waits for
// it). With one round at a time the coordinator began e after every
// earlier round ended. With more, an earlier round's MARKER may still be
// on its way, and a rank must not take e before it: e may begin here
// only once the MARKER of e-1 came (epochs are begun one after another).
func (p *Participant) mayBegin(e uint64) bool {
	return p.cfg.MaxRounds == 1 || e == p.marked+1
}

// Paused reports that rank stopped at a capture point for epoch e: asked
// by the marker, or before delivering a message stamped e. The rank takes
// the oldest round here it has not taken (rounds are taken in epoch
// order): if it is to write its checkpoint, Ready holds a Persist for it,
// and a Capture if a later round waits for it; otherwise it goes on.
func (p *Participant) Paused(rank int, e uint64) {
	rk := p.ranks[rank]
	if rk == nil || p.recovering || p.stopped || rk.epoch >= e {
		return
	}
	if e > p.last && p.mayBegin(e) {
		oldest := uint64(0) // the rounds under way here stay
		if p.cfg.MaxRounds == 1 {
			oldest = e
		}
		p.begin(e, oldest)
	}
	pr := p.next(rk)
	if pr == nil || pr.epoch > e {
		p.ask(rank) // a later round here, if any
		return
	}
	p.take(rank, pr, false)
	p.ask(rank)
}

// Waits reports whether rank, paused for epoch e and asked for no
// checkpoint (Paused left Ready without a Persist), may still take one
// of e here: e has not begun here, and a MARKER on its way (e's, or the
// one before it) will ask. Otherwise the rank takes none of e here (e's
// round here was left, or it took e already), and the driver moves it on
// to e all the same, so that messages stamped e reach it. Never with a
// single round at a time.
func (p *Participant) Waits(rank int, e uint64) bool {
	rk := p.ranks[rank]
	return rk != nil && !p.recovering && !p.stopped && rk.epoch < e && e > p.last && !p.mayBegin(e)
}

// Ended reports that rank's program ended. Its final state is its
// checkpoint in the rounds under way here that it had not captured yet,
// and in every later one.
func (p *Participant) Ended(rank int) {
	rk := p.ranks[rank]
	if rk == nil || rk.ended {
		return
	}
	rk.ended = true
	if p.recovering {
		return
	}
	for pr := p.next(rk); pr != nil; pr = p.next(rk) {
		p.take(rank, pr, true)
	}
}

// Durable reports that rank's checkpoint of e is durable on this host,
// with its manifest's digest, after it held the rank up for held (its
// pause and its waits for the capture; 0 if not known): it is replicated
// next.
func (p *Participant) Durable(rank int, e uint64, digest Hash, held time.Duration) {
	pr := p.round(e)
	if p.ranks[rank] == nil || pr == nil || pr.sent {
		return
	}
	rr := pr.ranks[rank]
	if rr == nil || rr.durable {
		return
	}
	rr.durable, rr.digest, rr.held = true, digest, held
	for _, to := range ReplicaHosts(p.host, p.live, p.cfg.Replicas) {
		p.ready.act(Action{Kind: ActReplicate, Rank: rank, Epoch: e, Host: to})
	}
	p.checkDone(pr)
}

// Replicated reports that host to holds rank's checkpoint of e.
func (p *Participant) Replicated(rank int, e uint64, to HostID) {
	pr := p.round(e)
	if p.ranks[rank] == nil || pr == nil {
		return
	}
	rr := pr.ranks[rank]
	if rr == nil || !rr.durable || slices.Contains(rr.replied, to) {
		return
	}
	rr.replied = append(rr.replied, to)
	p.checkDone(pr)
}

// Failed reports that rank's checkpoint of e could not be written or
// replicated: the host tells the coordinator, which abandons the round.
// The later rounds under way here fail with it: their checkpoints may
// rest on this one's (an incremental capture takes the chunks it did not
// change from the capture before), and the coordinator may have begun
// them after it abandoned e for another host's failure.
func (p *Participant) Failed(rank int, e uint64, err string) {
	pr := p.round(e)
	if p.ranks[rank] == nil || pr == nil || pr.sent || p.recovering {
		return
	}
	why := fmt.Sprintf("rank %d: %s", rank, err)
	for _, o := range p.rounds {
		if o.epoch < e || o.sent {
			continue
		}
		o.sent = true
		m := Msg{Kind: MsgDone, Epoch: o.epoch, Err: why}
		if o.epoch > e {
			m.Err = fmt.Sprintf("its checkpoints here may rest on those of epoch %d, which failed (%s)", e, why)
		}
		p.send(m)
	}
}

// checkDone sends DONE of pr once every rank here is durable and
// replicated for it, and not before its MARKER came: until then a rank
// may still be moving here (its ROUTE is on the way), and a DONE without
// it would let the coordinator commit an epoch that lacks the rank's
// checkpoint.
func (p *Participant) checkDone(pr *partRound) {
	if pr.sent || !pr.marked {
		return
	}
	want := len(ReplicaHosts(p.host, p.live, p.cfg.Replicas))
	var ds []RankDigest
	var held time.Duration
	for _, r := range p.Ranks() {
		rr := pr.ranks[r]
		if rr == nil || !rr.durable || len(rr.replied) < want {
			return
		}
		ds = append(ds, RankDigest{Rank: r, Digest: rr.digest})
		held = max(held, rr.held)
	}
	pr.sent, pr.doneOK = true, true
	if ds == nil {
		ds = []RankDigest{}
	}
	p.send(Msg{Kind: MsgDone, Epoch: pr.epoch, Digests: ds, Held: held})
}

// commit takes a COMMIT: its record is written here, and the rounds up to
// its epoch are over.
func (p *Participant) commit(rec *CommitRecord) {
	e := rec.Epoch
	p.committed = max(p.committed, e)
	p.rounds = slices.DeleteFunc(p.rounds, func(pr *partRound) bool { return pr.epoch <= e })
	if !slices.ContainsFunc(p.releasing, func(w relWait) bool { return w.epoch == e }) {
		p.releasing = append(p.releasing, relWait{epoch: e})
	}
	p.ready.act(Action{Kind: ActPersistCommit, Epoch: e, Record: rec})
}

// CommitDurable reports that a commit record a COMMIT brought is durable
// here: the epoch's delivered messages are stable now, once every earlier
// epoch's are (Release comes in epoch order).
func (p *Participant) CommitDurable(e uint64) {
	i := slices.IndexFunc(p.releasing, func(w relWait) bool { return w.epoch == e })
	if e == 0 || i < 0 {
		return
	}
	p.releasing[i].durable = true
	for len(p.releasing) > 0 && p.releasing[0].durable {
		p.ready.act(Action{Kind: ActRelease, Epoch: p.releasing[0].epoch})
		p.releasing = p.releasing[1:]
	}
}

// rollback makes this host's share of a new incarnation: its ranks go
// back to the committed epoch, ranks placed here anew restart from the
// replicas here, ranks moved away stop.
func (p *Participant) rollback(m Msg) {
	p.cancelMigrations()
	for _, pr := range p.rounds {
		if pr.epoch > max(p.committed, m.Epoch) {
			p.ready.act(Action{Kind: ActAbandon, Epoch: pr.epoch})
		}
	}
	p.inc, p.rounds, p.last, p.marked, p.releasing, p.committed = m.Inc, nil, 0, 0, nil, m.Epoch
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

func cmpOr(v, def uint64) uint64 {
	if v == 0 {
		return def
	}
	return v
}
