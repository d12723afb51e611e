package jobsim

import (
	"fmt"
	"slices"
	"time"

	"github.com/librahost/librahost/ckpt"
	"github.com/librahost/librahost/transport"
)

// Migrations in the simulation: the coordinator is asked at random steps
// to move a rank to another host or to drain one; the source's pre-copy
// rounds and last state are work finished at later steps (a target may
// refuse, die or be slow), and the route change re-sends the senders'
// logs to the new host as transport's SetRoute does (Sender.Resend).

const (
	stepWrites = 256 << 10 // bytes a program step writes: what pre-copy chases
	refuseOdds = 40        // 1 in refuseOdds pre-copy rounds is refused by its target
)

func protoConfig(cfg Config) ckpt.ProtoConfig {
	return ckpt.ProtoConfig{Hosts: cfg.Hosts, Replicas: cfg.Replicas, FailureTimeout: failureTimeout, MaxRounds: cfg.MaxRounds,
		MigrateSmall: 2 * stepWrites, MigrateStall: 3, MigrateRounds: 8, MigrateTimeout: 3 * time.Second}
}

// migrate asks the coordinator for a migration, a drain or an undrain.
func (w *world) migrate() error {
	if w.asked >= w.cfg.Migrations || w.ending || w.hosts[w.coordID].dead || w.res.Stopped != "" {
		return nil
	}
	h := ckpt.HostID(w.rng.IntN(w.cfg.Hosts))
	var err error
	switch k := w.rng.IntN(10); {
	case k < 7 || !w.cfg.Drains:
		rank := w.rng.IntN(w.cfg.Ranks)
		err = w.coord.Migrate(rank, h)
		w.logf("migrate rank %d to h%d: %v", rank, h, err)
	case k < 9:
		err = w.coord.Drain(h)
		w.logf("drain h%d: %v", h, err)
	default:
		err = w.coord.Undrain(h)
		w.logf("undrain h%d: %v", h, err)
	}
	if err == nil {
		w.asked++
	}
	return w.flushCoord()
}

// migrateEnded checks how a migration or a drain ended.
func (w *world) migrateEnded(a ckpt.Action) error {
	switch {
	case a.Kind == ckpt.ActDrained && a.Err == "":
		w.res.Drained++
		if slices.Contains(w.coord.Place(), a.Host) {
			return fmt.Errorf("h%d drained, but the coordinator places ranks on it: %v", a.Host, w.coord.Place())
		}
	case a.Kind == ckpt.ActMigrated && a.Err == "":
		w.res.Moved++
		if w.coord.Place()[a.Rank] != a.Host {
			return fmt.Errorf("rank %d moved to h%d, but the coordinator places it on h%d", a.Rank, a.Host, w.coord.Place()[a.Rank])
		}
	case a.Kind == ckpt.ActMigrated:
		w.res.MigFailed++
	}
	return nil
}

// migrationTarget returns the live target of a migration under way, if any.
func (w *world) migrationTarget() *host {
	for r := range w.cfg.Ranks {
		if to, ok := w.coord.Migrating(r); ok && !w.hosts[to].dead {
			return w.hosts[to]
		}
	}
	return nil
}

// migrateAction carries out a migration action of host x's participant.
func (w *world) migrateAction(x *host, a ckpt.Action) error {
	r := x.ranks[a.Rank]
	switch a.Kind {
	case ckpt.ActCopy:
		r.dirty = 0 // the round begins: what the program writes from now on is the next round's
		x.work = append(x.work, work{a: a})
	case ckpt.ActHalt:
		r.halt = true
	case ckpt.ActFinal:
		x.work = append(x.work, work{a: a, snap: r.snapshot(r.epoch, false)})
		r.left = true
	case ckpt.ActGoOn:
		r.halt, r.frozen, r.left = false, false, false
	case ckpt.ActCancel:
		x.work = slices.DeleteFunc(x.work, func(wk work) bool {
			return wk.a.Rank == a.Rank && (wk.a.Kind == ckpt.ActCopy || wk.a.Kind == ckpt.ActFinal)
		})
		delete(w.hosts[a.Host].staged, a.Rank)
	case ckpt.ActMove:
		x.route = slices.Clone(a.Place)
		// SetRoute: each sender here whose receiver moved sends its whole
		// log to the new host; each receiver here acks to a moved sender.
		for _, id := range sortedKeys(x.ranks) {
			o := x.ranks[id]
			if id == a.Rank || !o.running {
				continue
			}
			w.sendFrames(x, o.senders[a.Rank].Resend(w.now))
			if o.recvs[a.Rank].Delivered() > 0 && !o.left {
				w.sendFrames(x, []transport.Frame{*o.recvs[a.Rank].Ack()})
			}
		}
	case ckpt.ActAdopt:
		s := x.staged[a.Rank]
		if s == nil {
			return fmt.Errorf("h%d adopts rank %d without its state", x.id, a.Rank)
		}
		if s.epoch != a.Epoch {
			return fmt.Errorf("h%d adopts rank %d at e%d, its state is of e%d", x.id, a.Rank, a.Epoch, s.epoch)
		}
		delete(x.staged, a.Rank)
		nr, err := restore(a.Rank, w.cfg.Ranks, s)
		if err != nil {
			return err
		}
		nr.running = true
		x.ranks[a.Rank] = nr
		for _, snd := range nr.senders {
			w.sendFrames(x, snd.Resend(w.now))
		}
	}
	return nil
}

// migrateWork finishes a pre-copy round or a last state on its way from
// host x: the target may be dead, refuse it, or take it.
func (w *world) migrateWork(x *host, wk work) {
	a := wk.a
	to := w.hosts[a.Host]
	r := x.ranks[a.Rank]
	switch {
	case r == nil:
		return // the rank left: its migration ended
	case to.dead || to.stopped:
		w.logf("h%d: rank %d's stream to h%d broke", x.id, a.Rank, a.Host)
		x.part.MigrateFailed(a.Rank, fmt.Sprintf("the stream to h%d broke", a.Host))
	case a.Kind == ckpt.ActCopy && w.rng.IntN(refuseOdds) == 0:
		x.part.MigrateFailed(a.Rank, fmt.Sprintf("h%d refused rank %d: an input differs", a.Host, a.Rank))
	case a.Kind == ckpt.ActCopy:
		x.part.CopyDurable(a.Rank, a.Round, r.dirty, w.now)
	default:
		to.staged[a.Rank] = wk.snap
		x.part.FinalDurable(a.Rank, w.now)
	}
}

// halt stops rank r on host x at this capture point for its migration.
func (w *world) halt(x *host, r *rank) error {
	r.frozen = true
	w.logf("h%d rank %d stops for its migration", x.id, r.id)
	x.part.MigratePaused(r.id, w.now)
	return w.flush(x)
}

// runsOnce checks that rank r, about to run on host x, runs nowhere else.
func (w *world) runsOnce(x *host, r *rank) error {
	for _, y := range w.hosts {
		if y == x || y.dead || y.stopped || y.part.Inc() != x.part.Inc() {
			continue
		}
		if o := y.ranks[r.id]; o != nil && o.running && !o.frozen {
			return fmt.Errorf("rank %d runs on h%d and on h%d", r.id, x.id, y.id)
		}
	}
	return nil
}
