package jobsim

import (
	"fmt"
	"slices"

	"github.com/librahost/librahost/ckpt"
)

// flush carries out what host x's participant asked for: quick things at
// once, writes, replications and rollbacks as work finished later.
func (w *world) flush(x *host) error {
	rd := x.part.Ready()
	w.ctl = append(w.ctl, rd.Msgs...)
	for _, m := range rd.Msgs {
		w.logf("h%d sends %s", x.id, m)
	}
	for _, a := range rd.Actions {
		w.logf("h%d: %s", x.id, a)
		switch a.Kind {
		case ckpt.ActCapture:
			if r := x.ranks[a.Rank]; r != nil {
				r.want = max(r.want, a.Epoch)
			}
		case ckpt.ActPersist:
			r := x.ranks[a.Rank]
			r.epoch, r.want = a.Epoch, max(r.want, a.Epoch)
			x.work = append(x.work, work{a: a, snap: r.snapshot(a.Epoch, true)})
		case ckpt.ActReplicate, ckpt.ActPersistCommit, ckpt.ActRollback, ckpt.ActRestore:
			x.work = append(x.work, work{a: a})
		case ckpt.ActAbandon:
			for k := range x.store {
				if k.epoch == a.Epoch && x.hostsRank(k.rank) {
					delete(x.store, k)
				}
			}
		case ckpt.ActRelease:
			w.release(x, a.Epoch)
		case ckpt.ActDrop:
			delete(x.ranks, a.Rank)
		case ckpt.ActRoute:
			for _, r := range x.ranks {
				r.running = false
			}
			x.route = slices.Clone(a.Place)
			clear(x.staged) // migrations to here are off
			// Writes and rollbacks of an older incarnation are abandoned.
			x.work = slices.DeleteFunc(x.work, func(wk work) bool { return wk.a.Kind != ckpt.ActPersistCommit })
		case ckpt.ActResume:
			for _, id := range sortedKeys(x.ranks) {
				r := x.ranks[id]
				r.running = true
				for _, s := range r.senders {
					w.sendFrames(x, s.OnReconnect(w.now))
				}
			}
		case ckpt.ActCopy, ckpt.ActHalt, ckpt.ActFinal, ckpt.ActGoOn, ckpt.ActCancel, ckpt.ActMove, ckpt.ActAdopt:
			if err := w.migrateAction(x, a); err != nil {
				return err
			}
		case ckpt.ActStop:
			x.stopped = true
			if w.hosts[w.coordID].dead && w.allStopped() {
				return w.resume()
			}
		}
	}
	return nil
}

func (x *host) hostsRank(r int) bool { return x.ranks[r] != nil }

// resume starts the job again after its coordinator's host died and every
// other host stopped it, as submit --resume does: from the newest commit
// record any live host holds, with the coordinator on the first live host,
// as an incarnation newer than any a host ran.
func (w *world) resume() error {
	var rec *ckpt.CommitRecord
	var inc uint64
	live := make([]bool, len(w.hosts))
	for _, x := range w.hosts {
		if x.dead {
			continue
		}
		live[x.id] = true
		inc = max(inc, x.part.Inc())
		for _, r := range x.records {
			if rec == nil || r.Epoch > rec.Epoch {
				rec = r
			}
		}
	}
	var next uint64
	for k := range w.written {
		next = max(next, k.epoch+1)
	}
	cfg := protoConfig(w.cfg)
	cfg.Inc, cfg.Coordinator, cfg.Place = inc, ckpt.HostID(slices.Index(live, true)), w.place0
	if rec != nil {
		cfg.Place, cfg.Committed, cfg.Holders = rec.Place, rec.Epoch, rec.Holders
	}
	w.logf("resume from e%d with the coordinator on h%d as incarnation %d", cfg.Committed, cfg.Coordinator, inc+1)
	coord, err := ckpt.NewEpochCoordinator(cfg, next)
	if err != nil {
		return err
	}
	w.coord, w.coordID, w.ctl = coord, int(cfg.Coordinator), nil
	for _, x := range w.hosts {
		if x.dead {
			continue
		}
		if x.part, err = ckpt.NewParticipant(cfg, ckpt.HostID(x.id)); err != nil {
			return err
		}
		x.part.Start(w.now)
		x.stopped, x.ranks, x.work = false, map[int]*rank{}, nil
		x.route = slices.Clone(cfg.Place)
		clear(x.staged)
	}
	w.res.Resumes++
	w.coord.Resume(live, w.now)
	return w.flushCoord()
}

func (w *world) allStopped() bool {
	for _, x := range w.hosts {
		if !x.dead && !x.stopped {
			return false
		}
	}
	return true
}

// release applies a committed epoch on host x: for each of its ranks, the
// messages that the rank's checkpoint shows delivered are stable. The
// receivers record it, and their acks carry it to the senders, which drop
// those messages from their logs (deliverData).
func (w *world) release(x *host, e uint64) {
	for _, d := range sortedKeys(x.ranks) {
		s := x.store[ckey{d, e}]
		if s == nil || !x.ranks[d].running {
			continue
		}
		for src, st := range s.recvs {
			x.ranks[d].recvs[src].Commit(st.Delivered)
		}
	}
	for k := range x.store {
		if k.epoch+1 < e {
			delete(x.store, k) // older than the two newest committed epochs
		}
	}
}

// flushCoord carries out what the coordinator asked for.
func (w *world) flushCoord() error {
	rd := w.coord.Ready()
	w.ctl = append(w.ctl, rd.Msgs...)
	for _, m := range rd.Msgs {
		w.logf("coord sends %s", m)
	}
	x := w.hosts[w.coordID]
	for _, a := range rd.Actions {
		w.logf("coord: %s", a)
		switch a.Kind {
		case ckpt.ActPersistCommit:
			if err := w.checkCut(a.Record); err != nil {
				return err
			}
			x.work = append(x.work, work{a: a, coord: true})
		case ckpt.ActRecover:
			w.res.Recoveries++
		case ckpt.ActMigrated, ckpt.ActDrained:
			if err := w.migrateEnded(a); err != nil {
				return err
			}
		}
	}
	// The job's STOP goes to the live hosts; a host declared lost is told
	// with a STOP too, and the job goes on without it.
	if i := slices.IndexFunc(rd.Msgs, func(m ckpt.Msg) bool { return m.Kind == ckpt.MsgStop && w.coord.Live(m.To) }); i >= 0 {
		w.res.Stopped = rd.Msgs[i].Err
	}
	return nil
}

// doWork finishes one pending write, replication, commit record or
// rollback on a live host; with disk failures on, some writes fail.
func (w *world) doWork() error {
	var xs []*host
	for _, x := range w.hosts {
		if !x.dead && !x.stopped && len(x.work) > 0 {
			xs = append(xs, x)
		}
	}
	if len(xs) == 0 {
		return nil
	}
	x := xs[w.rng.IntN(len(xs))]
	i := w.rng.IntN(len(x.work))
	wk := x.work[i]
	x.work = slices.Delete(x.work, i, i+1)
	a := wk.a
	fail := w.cfg.DiskFailures && w.rng.IntN(20) == 0
	switch a.Kind {
	case ckpt.ActPersist:
		if fail {
			w.logf("h%d: write of rank %d e%d fails", x.id, a.Rank, a.Epoch)
			x.part.Failed(a.Rank, a.Epoch, "disk full")
			break
		}
		x.store[ckey{a.Rank, a.Epoch}] = wk.snap
		w.written[ckey{a.Rank, a.Epoch}] = wk.snap
		x.part.Durable(a.Rank, a.Epoch, ckpt.Hash{byte(a.Rank), byte(a.Epoch)}, 0)
	case ckpt.ActReplicate:
		s := x.store[ckey{a.Rank, a.Epoch}]
		to := w.hosts[a.Host]
		if s == nil || to.dead {
			return nil // the round is abandoned, or the replica host is lost: recovery follows
		}
		to.store[ckey{a.Rank, a.Epoch}] = s
		x.part.Replicated(a.Rank, a.Epoch, a.Host)
	case ckpt.ActPersistCommit:
		if wk.coord {
			if fail {
				w.coord.CommitFailed(a.Epoch)
			} else {
				w.res.Committed = a.Epoch
				x.records[a.Epoch] = a.Record
				w.coord.CommitDurable(a.Epoch)
			}
			return w.flushCoord()
		}
		x.records[a.Epoch] = a.Record
		x.part.CommitDurable(a.Epoch)
	case ckpt.ActCopy, ckpt.ActFinal:
		w.migrateWork(x, wk)
	case ckpt.ActRollback, ckpt.ActRestore:
		var s *snapshot
		if a.Epoch > 0 {
			if s = x.store[ckey{a.Rank, a.Epoch}]; s == nil {
				return fmt.Errorf("h%d: %s: no checkpoint of rank %d epoch %d here", x.id, a, a.Rank, a.Epoch)
			}
		}
		r, err := restore(a.Rank, w.cfg.Ranks, s)
		if err != nil {
			return fmt.Errorf("h%d: %s: %v", x.id, a, err)
		}
		x.ranks[a.Rank] = r
		x.part.RolledBack(a.Rank, r.ended)
	}
	return w.flush(x)
}
