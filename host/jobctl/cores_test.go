package jobctl

import (
	"time"

	"github.com/librahost/librahost/ckpt"
)

// coreHost is a driver of the protocol cores for the tests and the
// benchmark: one host's Endpoint, its Participant and, on the
// coordinator's host, the EpochCoordinator, owned by one goroutine
// (loop). Captures, writes and replications succeed at once; every
// action is reported on acts.
type coreHost struct {
	ep    *Endpoint
	self  ckpt.HostID
	coord *ckpt.EpochCoordinator
	part  *ckpt.Participant
	acts  chan hostAction
	cmds  chan func()
}

type hostAction struct {
	host ckpt.HostID
	act  ckpt.Action
	at   time.Time
}

// newCoreHost makes host self's cores of a job of one rank per host.
func newCoreHost(ep *Endpoint, hosts int, self ckpt.HostID, ft time.Duration, acts chan hostAction) *coreHost {
	place := make([]ckpt.HostID, hosts)
	for h := range place {
		place[h] = ckpt.HostID(h)
	}
	cfg := ckpt.ProtoConfig{Hosts: hosts, Coordinator: 0, Place: place, FailureTimeout: ft}
	h := &coreHost{ep: ep, self: self, acts: acts, cmds: make(chan func())}
	var err error
	if self == 0 {
		if h.coord, err = ckpt.NewEpochCoordinator(cfg, 0); err != nil {
			panic(err)
		}
	}
	if h.part, err = ckpt.NewParticipant(cfg, self); err != nil {
		panic(err)
	}
	return h
}

// toCoordinator tells the kinds a participant sends.
func toCoordinator(k ckpt.MsgKind) bool { return k == ckpt.MsgDone || k == ckpt.MsgRecovered }

// loop drives the cores until the Endpoint closes: messages in, a Tick
// every tick (after telling the cores who was heard when), messages and
// actions out.
func (h *coreHost) loop(tick time.Duration) {
	now := time.Now()
	if h.coord != nil {
		h.coord.Start(now)
	}
	h.part.Start(now)
	t := time.NewTicker(tick)
	defer t.Stop()
	for {
		select {
		case r, ok := <-h.ep.Recv():
			if !ok {
				return
			}
			if h.coord != nil && toCoordinator(r.Msg.Kind) {
				h.coord.Step(r.Msg, r.At)
			} else {
				h.part.Step(r.Msg, r.At)
			}
		case now := <-t.C:
			if h.coord != nil {
				h.ep.TellCoordinator(h.coord)
				h.coord.Tick(now)
			}
			h.ep.TellParticipant(h.part)
			h.part.Tick(now)
		case f := <-h.cmds:
			f()
		}
		h.flush()
	}
}

// do runs f in the loop.
func (h *coreHost) do(f func()) { h.cmds <- f }

// flush sends what the cores have to say and carries out their actions
// until they have nothing more.
func (h *coreHost) flush() {
	for {
		var rd []ckpt.Ready
		if h.coord != nil {
			rd = append(rd, h.coord.Ready())
		}
		rd = append(rd, h.part.Ready())
		busy := false
		for i, r := range rd {
			fromCoord := h.coord != nil && i == 0
			for _, m := range r.Msgs {
				busy = true
				h.ep.Send(m.To, m)
			}
			for _, a := range r.Actions {
				busy = true
				h.acts <- hostAction{host: h.self, act: a, at: time.Now()}
				h.carryOut(a, fromCoord)
			}
		}
		if h.coord != nil {
			h.ep.SetInc(h.coord.Inc())
		} else {
			h.ep.SetInc(h.part.Inc())
		}
		if !busy {
			return
		}
	}
}

func (h *coreHost) carryOut(a ckpt.Action, fromCoord bool) {
	switch a.Kind {
	case ckpt.ActCapture:
		h.part.Paused(a.Rank, a.Epoch)
	case ckpt.ActPersist:
		h.part.Durable(a.Rank, a.Epoch, ckpt.Hash{byte(a.Rank), byte(a.Epoch)}, 0)
	case ckpt.ActReplicate:
		h.part.Replicated(a.Rank, a.Epoch, a.Host)
	case ckpt.ActPersistCommit:
		if fromCoord {
			h.coord.CommitDurable(a.Epoch)
		} else {
			h.part.CommitDurable(a.Epoch)
		}
	case ckpt.ActRollback, ckpt.ActRestore:
		h.part.RolledBack(a.Rank, false)
	}
}

// waitAct returns the first action of kind (on host, if host ≥ 0) that
// comes on acts, or fails after limit, which only ends a hang.
func waitAct(tb interface {
	Helper()
	Fatalf(string, ...any)
}, acts chan hostAction, host ckpt.HostID, kind ckpt.ActionKind, limit time.Duration) hostAction {
	tb.Helper()
	deadline := time.After(limit)
	for {
		select {
		case a := <-acts:
			if a.act.Kind == kind && (host < 0 || a.host == host) {
				return a
			}
		case <-deadline:
			tb.Fatalf("no %v action on h%d within %v", kind, host, limit)
		}
	}
}
