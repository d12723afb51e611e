package ckpt

import (
	"fmt"
	"maps"
	"slices"
	"time"
)

// A host's side of migrations (proto_migrate.go): the pre-copy of the
// ranks leaving it, and the route changes every host applies.

// srcMig is a migration of a rank off this host.
type srcMig struct {
	rank  int
	to    HostID
	phase migPhase
	round int       // the newest round asked for
	busy  bool      // a Copy, Halt or Final is not answered yet
	best  int64     // the fewest bytes a round left dirty (-1: no round yet)
	stall int       // rounds in a row that left no fewer
	last  time.Time // when the target (or the rank) last made progress
	// copied is when COPIED was sent: the switch is due within
	// MigrateWait (it waits for the checkpoint round under way).
	copied time.Time
}

func (p *Participant) stepMigrate(m Msg, now time.Time) {
	switch m.Kind {
	case MsgMigrate:
		if p.migs[m.Rank] != nil {
			return
		}
		if p.ranks[m.Rank] == nil || p.recovering {
			p.send(Msg{Kind: MsgMigFailed, Rank: m.Rank, Host: m.Host,
				Err: fmt.Sprintf("rank %d does not run on h%d", m.Rank, p.host)})
			return
		}
		if p.migs == nil {
			p.migs = map[int]*srcMig{}
		}
		mg := &srcMig{rank: m.Rank, to: m.Host, best: -1}
		p.migs[m.Rank] = mg
		p.copyRound(mg, now)
	case MsgSwitch:
		mg := p.migs[m.Rank]
		if mg == nil || mg.phase != migCopied {
			return
		}
		// What the rank wrote since the last round is its downtime's
		// work: if the switch waited (for a checkpoint round), copy it
		// once more while the rank runs.
		if mg.busy || now.Sub(mg.last) > p.cfg.MigrateTopUp {
			mg.phase = migTopUp
			if !mg.busy {
				p.copyRound(mg, now)
			}
			return
		}
		p.halt(mg, now)
	case MsgRoute:
		p.route(m)
	}
}

// halt stops the rank at its next capture point: its last state goes to
// the target.
func (p *Participant) halt(mg *srcMig, now time.Time) {
	mg.phase, mg.busy, mg.last = migSwitching, true, now
	p.ready.act(Action{Kind: ActHalt, Rank: mg.rank})
}

func (p *Participant) copyRound(mg *srcMig, now time.Time) {
	mg.round++
	mg.busy, mg.last = true, now
	p.ready.act(Action{Kind: ActCopy, Rank: mg.rank, Host: mg.to, Round: mg.round})
}

// CopyProgress reports that round of rank's pre-copy moved forward: more
// of its capture is written here, or more of it reached the target. A
// round of a large guest takes longer than MigrateTimeout (the first of a
// 4 GiB guest compresses and sends all of it); the timeout is for a round
// that stands still.
func (p *Participant) CopyProgress(rank, round int, now time.Time) {
	if mg := p.migs[rank]; mg != nil && round == mg.round && mg.busy && mg.phase <= migTopUp {
		mg.last = now
	}
}

// CopyDurable reports that round of rank's pre-copy is durable at the
// target, and that dirty bytes of its memory were written since the round
// began: what the next round would send.
func (p *Participant) CopyDurable(rank, round int, dirty int64, now time.Time) {
	mg := p.migs[rank]
	if mg == nil || round != mg.round || mg.phase > migTopUp || !mg.busy {
		return
	}
	mg.busy, mg.last = false, now
	if mg.phase == migTopUp {
		p.halt(mg, now)
		return
	}
	if mg.best < 0 || dirty < mg.best {
		mg.best, mg.stall = dirty, 0
	} else {
		mg.stall++
	}
	small := dirty <= p.cfg.MigrateSmall
	if mg.phase == migCopying && (small || mg.stall >= p.cfg.MigrateStall || round >= p.cfg.MigrateRounds) {
		mg.phase, mg.copied = migCopied, now
		p.send(Msg{Kind: MsgCopied, Rank: rank, Host: mg.to})
	}
	// Until SWITCH, rounds go on while what is dirty is not small.
	if mg.phase == migCopying || !small {
		p.copyRound(mg, now)
	}
}

// MigratePaused reports that rank stopped at a capture point, as Halt
// asked: its last state goes to the target.
func (p *Participant) MigratePaused(rank int, now time.Time) {
	mg := p.migs[rank]
	if mg == nil || mg.phase != migSwitching {
		return
	}
	mg.phase, mg.busy, mg.last = migFinal, true, now
	p.ready.act(Action{Kind: ActFinal, Rank: rank, Host: mg.to})
}

// FinalDurable reports that the target holds all of rank's last state: the
// coordinator is told, and decides.
func (p *Participant) FinalDurable(rank int, now time.Time) {
	mg := p.migs[rank]
	if mg == nil || mg.phase != migFinal {
		return
	}
	mg.phase, mg.busy, mg.last = migMoved, false, now
	rk := p.ranks[rank]
	p.send(Msg{Kind: MsgMoved, Rank: rank, Host: mg.to, Epoch: rk.epoch, Ended: rk.ended})
}

// MigrateFailed reports that rank's migration cannot go on (err: the
// target refused, is lost or its stream broke). Before MOVED the rank
// goes on here; after it, the coordinator decides.
func (p *Participant) MigrateFailed(rank int, err string) {
	if mg := p.migs[rank]; mg != nil && mg.phase < migMoved {
		p.failMig(mg, err)
	}
}

func (p *Participant) failMig(mg *srcMig, err string) {
	if mg.phase >= migSwitching {
		p.ready.act(Action{Kind: ActGoOn, Rank: mg.rank})
	}
	p.ready.act(Action{Kind: ActCancel, Rank: mg.rank, Host: mg.to})
	p.send(Msg{Kind: MsgMigFailed, Rank: mg.rank, Host: mg.to,
		Err: fmt.Sprintf("%s: rank %d goes on at h%d", err, mg.rank, p.host)})
	delete(p.migs, mg.rank)
}

// tickMigrations fails the migrations whose target, or rank, made no
// progress for MigrateTimeout (a round durable, or one going forward:
// CopyProgress), and those whose switch did not come
// MigrateWait after their copy converged.
func (p *Participant) tickMigrations(now time.Time) {
	for _, r := range slices.Sorted(maps.Keys(p.migs)) {
		mg := p.migs[r]
		if mg.phase == migCopied && now.Sub(mg.copied) > p.cfg.MigrateWait {
			p.failMig(mg, fmt.Sprintf("no switch came %s after the copy converged (the checkpoint round it waits for did not end)", p.cfg.MigrateWait))
			continue
		}
		if !mg.busy || mg.phase >= migMoved || now.Sub(mg.last) <= p.cfg.MigrateTimeout {
			continue
		}
		if mg.phase == migSwitching {
			p.failMig(mg, fmt.Sprintf("rank %d reached no capture point in %s", r, p.cfg.MigrateTimeout))
		} else {
			p.failMig(mg, fmt.Sprintf("the pre-copy to h%d went no further for %s", mg.to, p.cfg.MigrateTimeout))
		}
	}
}

// cancelMigrations drops every migration off this host as it rolls back:
// the rollback restarts the ranks, the targets drop what they got.
func (p *Participant) cancelMigrations() {
	for _, r := range slices.Sorted(maps.Keys(p.migs)) {
		p.ready.act(Action{Kind: ActCancel, Rank: r, Host: p.migs[r].to})
	}
	clear(p.migs)
}

// route applies a move the coordinator decided: every host re-routes, the
// source drops the rank, the target adopts it.
func (p *Participant) route(m Msg) {
	if len(m.Place) != len(p.place) || m.Rank < 0 || m.Rank >= len(p.place) {
		return
	}
	old := p.place[m.Rank]
	p.place = slices.Clone(m.Place)
	p.ready.act(Action{Kind: ActMove, Rank: m.Rank, Host: m.Host, Place: slices.Clone(m.Place)})
	switch {
	case old == p.host && m.Host != p.host:
		delete(p.ranks, m.Rank)
		delete(p.migs, m.Rank)
		p.ready.act(Action{Kind: ActDrop, Rank: m.Rank})
	case m.Host == p.host && p.ranks[m.Rank] == nil:
		p.ranks[m.Rank] = &partRank{epoch: m.Epoch, asked: m.Epoch, ended: m.Ended}
		p.ready.act(Action{Kind: ActAdopt, Rank: m.Rank, Epoch: m.Epoch})
	}
}
