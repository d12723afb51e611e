package ckpt

import (
	"bytes"
	"flag"
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/librahost/librahost/internal/scripttest"
)

var rewrite = flag.Bool("rewrite", false, "rewrite the expected output of testdata/proto scripts")

// TestProtoScripts runs the golden scripts in testdata/proto. A script is
// a sequence of blocks:
//
//	command key=value ...
//	----
//	expected output
//	<blank line>
//
// Lines starting with # outside blocks are comments. A job of H hosts has
// an EpochCoordinator on host coord and a Participant on every host; the
// control messages they send are in flight on a "net" until delivered.
// Every action a core asks for is pending until answered. Commands:
//
//	job hosts=H ranks=N [replicas=R] [coord=C] [timeout=D] [rounds=M]
//	                                         start over, ranks round-robin, M rounds at once
//	trigger                                  the coordinator's timer fires
//	net                                      print the messages in flight
//	deliver [to=h] [from=h] [kind=K] [n=N]   deliver the first N (default all) that match
//	drop [to=h] [from=h] [kind=K]            lose the messages that match
//	paused rank=r [e=E]                      rank stopped at a capture point (default: as asked)
//	ended rank=r                             rank's program ended
//	durable rank=r | replicated rank=r to=h | failed rank=r err=S    answer rank's Persist / Replicate
//	                                         (the oldest pending; e=E: of epoch E)
//	commit host=h [coord] [fail]             the commit record written on h (by the coordinator) is durable (or failed)
//	rolledback rank=r [ended]                answer rank's Rollback or Restore
//	tick +D                                  time passes; live hosts keep each other alive
//	crash host=h                             h stops: no more events, messages to it are lost
//	revive host=h                            h comes back as it was (on=h names it in paused, durable)
//	lost host=h                              the coordinator is told h is lost
//	resume coord=C                           start the job again from the newest commit record,
//	                                         with its coordinator on C, without the crashed hosts
//	pending                                  print the actions not answered yet
//	auto [quiet] [until=commit]              deliver and answer everything until nothing is left
//	                                         (or only the coordinator's commit record is)
//	count                                    control messages sent per host, and their epochs
func TestProtoScripts(t *testing.T) {
	files, _ := filepath.Glob("testdata/proto/*.txt")
	if len(files) == 0 {
		t.Fatal("no scripts in testdata/proto")
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) { runProtoScript(t, file) })
	}
}

func runProtoScript(t *testing.T, file string) {
	h := &protoHarness{t: t}
	scripttest.Run(t, file, *rewrite, h.run)
}

type pendingAction struct {
	host  HostID
	coord bool // the coordinator's action, not its host participant's
	a     Action
}

type protoHarness struct {
	t       *testing.T
	cfg     ProtoConfig
	coord   *EpochCoordinator
	parts   []*Participant
	crashed []bool
	net     []Msg
	pending []pendingAction
	now     time.Time
	out     bytes.Buffer
	sent    map[HostID]map[MsgKind]int
	epochs  map[uint64]bool
}

func (h *protoHarness) printf(format string, args ...any) { fmt.Fprintf(&h.out, format+"\n", args...) }

func (h *protoHarness) run(line string) string {
	h.out.Reset()
	f := strings.Fields(line)
	args := map[string]string{}
	for _, a := range f[1:] {
		k, v, _ := strings.Cut(a, "=")
		args[k] = v
	}
	num := func(k string, def int) int {
		v, ok := args[k]
		if !ok {
			return def
		}
		n, err := strconv.Atoi(strings.TrimPrefix(v, "h"))
		if err != nil {
			h.t.Fatalf("%s: %s=%q is not a number", line, k, v)
		}
		return n
	}
	if f[0] != "job" && h.coord == nil {
		h.t.Fatalf("%s: no job yet", line)
	}
	switch f[0] {
	case "job":
		h.job(num("hosts", 1), num("ranks", 1), num("replicas", 0), HostID(num("coord", 0)), args["timeout"], num("rounds", 0))
	case "trigger":
		if e := h.coord.Trigger(); e == 0 {
			h.printf("no round begins")
		}
		h.flushCoord()
	case "net":
		for _, m := range h.net {
			h.printf("%s", m)
		}
	case "deliver":
		h.deliver(func(m Msg) bool { return h.match(m, args) }, num("n", -1))
	case "drop":
		h.net = slices.DeleteFunc(h.net, func(m Msg) bool {
			if h.match(m, args) {
				h.printf("dropped %s", m)
				return true
			}
			return false
		})
	case "paused":
		h.paused(num("rank", 0), uint64(num("e", 0)), HostID(num("on", -1)))
	case "ended":
		r := num("rank", 0)
		h.take(ActCapture, r, -1)
		p := h.host(r)
		h.parts[p].Ended(r)
		h.flush(p)
	case "durable", "failed":
		r, e := num("rank", 0), uint64(num("e", 0))
		a, ok := h.takeWhere(func(p pendingAction) bool {
			return p.a.Kind == ActPersist && p.a.Rank == r && (num("on", -1) < 0 || p.host == HostID(num("on", -1))) && (e == 0 || p.a.Epoch == e)
		})
		if !ok {
			h.t.Fatalf("%s: rank %d has no Persist pending", line, r)
		}
		if f[0] == "durable" {
			h.parts[a.host].Durable(r, a.a.Epoch, Hash{byte(r)}, 0)
		} else {
			h.parts[a.host].Failed(r, a.a.Epoch, args["err"])
		}
		h.flush(a.host)
	case "replicated":
		r, to, e := num("rank", 0), HostID(num("to", 0)), uint64(num("e", 0))
		a, ok := h.takeWhere(func(p pendingAction) bool {
			return p.a.Kind == ActReplicate && p.a.Rank == r && p.a.Host == to && (e == 0 || p.a.Epoch == e)
		})
		if !ok {
			h.t.Fatalf("%s: no Replicate of rank %d to h%d pending", line, r, to)
		}
		h.parts[a.host].Replicated(r, a.a.Epoch, to)
		h.flush(a.host)
	case "commit":
		x := HostID(num("host", 0))
		h.commit(x, x == h.cfg.Coordinator && slices.Contains(f, "coord"), slices.Contains(f, "fail"))
	case "rolledback":
		r := num("rank", 0)
		a, ok := h.takeWhere(func(p pendingAction) bool {
			return (p.a.Kind == ActRollback || p.a.Kind == ActRestore) && p.a.Rank == r
		})
		if !ok {
			h.t.Fatalf("%s: no rollback of rank %d pending", line, r)
		}
		h.parts[a.host].RolledBack(r, slices.Contains(f, "ended"))
		h.flush(a.host)
	case "tick":
		d, err := time.ParseDuration(strings.TrimPrefix(f[1], "+"))
		if err != nil {
			h.t.Fatalf("%s: %v", line, err)
		}
		h.tick(d)
	case "crash":
		x := HostID(num("host", 0))
		h.crashed[x] = true
		h.pending = slices.DeleteFunc(h.pending, func(p pendingAction) bool { return p.host == x })
	case "revive":
		h.crashed[num("host", 0)] = false
	case "resume":
		h.resume(HostID(num("coord", 0)))
	case "lost":
		h.coord.HostLost(HostID(num("host", 0)))
		h.flushCoord()
	case "pending":
		for _, p := range h.pending {
			h.printf("h%d: %s", p.host, p.a)
		}
	case "auto":
		h.auto(slices.Contains(f, "quiet"), args["until"] == "commit")
	case "count":
		h.count()
	default:
		if !h.runMigrate(line, f[0], args, num) {
			h.t.Fatalf("unknown command %q", line)
		}
	}
	return h.out.String()
}

// paused stops rank at a capture point for epoch e, or for the epoch it
// was asked for if e is 0.
func (h *protoHarness) paused(r int, e uint64, on HostID) {
	if e == 0 {
		a, ok := h.take(ActCapture, r, on)
		if !ok {
			h.t.Fatalf("rank %d was not asked to capture", r)
		}
		e = a.a.Epoch
	} else {
		h.pending = slices.DeleteFunc(h.pending, func(p pendingAction) bool {
			return p.a.Kind == ActCapture && p.a.Rank == r && p.a.Epoch <= e
		})
	}
	p := on
	if p < 0 {
		p = h.host(r)
	}
	h.parts[p].Paused(r, e)
	h.flush(p)
}

func (h *protoHarness) job(hosts, ranks, replicas int, coord HostID, timeout string, rounds int) {
	place := make([]HostID, ranks)
	for r := range place {
		place[r] = HostID(r % hosts)
	}
	cfg := ProtoConfig{Hosts: hosts, Coordinator: coord, Place: place, Replicas: replicas, MaxRounds: rounds}
	if timeout != "" {
		d, err := time.ParseDuration(timeout)
		if err != nil {
			h.t.Fatal(err)
		}
		cfg.FailureTimeout = d
	}
	*h = protoHarness{t: h.t, cfg: cfg, crashed: make([]bool, hosts), now: time.Unix(1000, 0),
		sent: map[HostID]map[MsgKind]int{}, epochs: map[uint64]bool{}}
	var err error
	if h.coord, err = NewEpochCoordinator(cfg, 0); err != nil {
		h.t.Fatal(err)
	}
	h.coord.Start(h.now)
	for x := range hosts {
		p, err := NewParticipant(cfg, HostID(x))
		if err != nil {
			h.t.Fatal(err)
		}
		p.Start(h.now)
		h.parts = append(h.parts, p)
	}
	if rounds > 1 {
		h.printf("place=%v replicas=%d rounds=%d", place, h.coord.cfg.Replicas, rounds)
		return
	}
	h.printf("place=%v replicas=%d", place, h.coord.cfg.Replicas)
}

// resume makes new cores from the coordinator's newest commit record, as
// submit --resume does with the records the hosts kept.
func (h *protoHarness) resume(coord HostID) {
	cfg := h.cfg
	cfg.Coordinator, cfg.Committed, cfg.Holders, cfg.Inc = coord, h.coord.committed, h.coord.holders, h.coord.inc
	cfg.Place = h.coord.Place()
	next := h.coord.next
	h.cfg = cfg
	var err error
	if h.coord, err = NewEpochCoordinator(cfg, next); err != nil {
		h.t.Fatal(err)
	}
	live := make([]bool, cfg.Hosts)
	for x := range h.parts {
		if h.crashed[x] {
			continue
		}
		live[x] = true
		if h.parts[x], err = NewParticipant(cfg, HostID(x)); err != nil {
			h.t.Fatal(err)
		}
		h.parts[x].Start(h.now)
	}
	h.net, h.pending = nil, nil
	h.coord.Resume(live, h.now)
	h.flushCoord()
}

// host returns where rank runs now, by its participant.
func (h *protoHarness) host(rank int) HostID {
	for x, p := range h.parts {
		if !h.crashed[x] && p.ranks[rank] != nil {
			return HostID(x)
		}
	}
	h.t.Fatalf("rank %d runs on no live host", rank)
	return 0
}

func (h *protoHarness) match(m Msg, args map[string]string) bool {
	if v, ok := args["to"]; ok && fmt.Sprint(m.To) != strings.TrimPrefix(v, "h") {
		return false
	}
	if v, ok := args["from"]; ok && fmt.Sprint(m.From) != strings.TrimPrefix(v, "h") {
		return false
	}
	if v, ok := args["kind"]; ok && m.Kind.String() != v {
		return false
	}
	return true
}

func (h *protoHarness) deliver(match func(Msg) bool, n int) {
	for i := 0; i < len(h.net) && n != 0; {
		m := h.net[i]
		if !match(m) {
			i++
			continue
		}
		h.net = slices.Delete(h.net, i, i+1)
		n--
		if h.crashed[m.To] {
			h.printf("lost %s", m)
			continue
		}
		h.printf("deliver %s", m)
		if m.To == h.cfg.Coordinator && m.Kind.ToCoordinator() {
			h.coord.Step(m, h.now)
			h.flushCoord()
		} else {
			h.parts[m.To].Step(m, h.now)
			h.flush(m.To)
		}
	}
}

func (h *protoHarness) commit(x HostID, coord, fail bool) {
	a, ok := h.takeWhere(func(p pendingAction) bool {
		return p.a.Kind == ActPersistCommit && p.host == x && p.coord == coord
	})
	if !ok {
		h.t.Fatalf("no PersistCommit pending on h%d", x)
	}
	if a.coord {
		if fail {
			h.coord.CommitFailed(a.a.Epoch)
		} else {
			h.coord.CommitDurable(a.a.Epoch)
		}
		h.flushCoord()
		return
	}
	h.parts[x].CommitDurable(a.a.Epoch)
	h.flush(x)
}

func (h *protoHarness) tick(d time.Duration) {
	h.now = h.now.Add(d)
	h.printf("t=%s", h.now.Sub(time.Unix(1000, 0)))
	coordUp := !h.crashed[h.cfg.Coordinator]
	for x, p := range h.parts {
		if h.crashed[x] {
			continue
		}
		if coordUp && h.coord.Live(HostID(x)) {
			h.coord.Heard(HostID(x), h.now)
			p.Heard(h.now)
		}
	}
	if coordUp {
		h.coord.Tick(h.now)
		h.flushCoord()
	}
	for x, p := range h.parts {
		if !h.crashed[x] {
			p.Tick(h.now)
			h.flush(HostID(x))
		}
	}
}

// flushCoord prints and queues what the coordinator said.
func (h *protoHarness) flushCoord() {
	rd := h.coord.Ready()
	for _, a := range rd.Actions {
		h.printf("coord: %s", a)
		if a.Kind == ActPersistCommit {
			h.checkRecord(a.Record)
			h.pending = append(h.pending, pendingAction{host: h.cfg.Coordinator, coord: true, a: a})
		}
	}
	h.queue(rd.Msgs)
}

// checkRecord fails the test if a commit record the coordinator is about
// to write lacks some rank's checkpoint: a recovery to it would find none.
func (h *protoHarness) checkRecord(rec *CommitRecord) {
	for r := range rec.Place {
		if !slices.ContainsFunc(rec.Digests, func(d RankDigest) bool { return d.Rank == r }) {
			h.t.Errorf("the commit record of e%d names no checkpoint of rank %d: %s", rec.Epoch, r, rec)
		}
	}
}

func (h *protoHarness) flush(x HostID) {
	rd := h.parts[x].Ready()
	for _, a := range rd.Actions {
		h.printf("h%d: %s", x, a)
		switch a.Kind {
		case ActCapture, ActPersist, ActReplicate, ActPersistCommit, ActRollback, ActRestore, ActCopy, ActHalt, ActFinal:
			h.pending = append(h.pending, pendingAction{host: x, a: a})
		case ActCancel:
			h.pending = slices.DeleteFunc(h.pending, func(p pendingAction) bool {
				return p.host == x && p.a.Rank == a.Rank && (p.a.Kind == ActCopy || p.a.Kind == ActHalt || p.a.Kind == ActFinal)
			})
		case ActDrop:
			h.pending = slices.DeleteFunc(h.pending, func(p pendingAction) bool { return p.host == x && p.a.Rank == a.Rank })
		}
	}
	h.queue(rd.Msgs)
}

func (h *protoHarness) queue(ms []Msg) {
	for _, m := range ms {
		h.printf("-> %s", m)
		h.net = append(h.net, m)
		host := m.To // the participant's end of the message
		if m.Kind.ToCoordinator() {
			host = m.From
		}
		if h.sent[host] == nil {
			h.sent[host] = map[MsgKind]int{}
		}
		h.sent[host][m.Kind]++
		if m.Epoch != 0 {
			h.epochs[m.Epoch] = true
		}
	}
}

// take removes and returns the first action of kind pending for rank (on
// host on, if not negative).
func (h *protoHarness) take(kind ActionKind, rank int, on HostID) (pendingAction, bool) {
	return h.takeWhere(func(p pendingAction) bool {
		return p.a.Kind == kind && p.a.Rank == rank && (on < 0 || p.host == on)
	})
}

// takeWhere removes and returns the first pending action that match
// accepts.
func (h *protoHarness) takeWhere(match func(pendingAction) bool) (pendingAction, bool) {
	i := slices.IndexFunc(h.pending, match)
	if i < 0 {
		return pendingAction{}, false
	}
	p := h.pending[i]
	h.pending = slices.Delete(h.pending, i, i+1)
	return p, true
}

// auto delivers every message and answers every pending action, oldest
// first, until nothing is left (or, untilCommit, nothing but the
// coordinator's commit record).
func (h *protoHarness) auto(quiet, untilCommit bool) {
	for steps := 0; ; steps++ {
		if steps > 100000 {
			h.t.Fatal("auto: no end")
		}
		mark := h.out.Len()
		i := slices.IndexFunc(h.pending, func(p pendingAction) bool { return !untilCommit || !p.coord })
		switch {
		case len(h.net) > 0:
			h.deliver(func(Msg) bool { return true }, 1)
		case i >= 0:
			p := h.pending[i]
			if p.a.Kind != ActCapture && p.a.Kind != ActPersistCommit {
				h.pending = slices.Delete(h.pending, i, i+1)
			}
			switch p.a.Kind {
			case ActCapture:
				h.paused(p.a.Rank, 0, p.host)
			case ActPersist:
				h.parts[p.host].Durable(p.a.Rank, p.a.Epoch, Hash{byte(p.a.Rank)}, 0)
				h.flush(p.host)
			case ActReplicate:
				h.parts[p.host].Replicated(p.a.Rank, p.a.Epoch, p.a.Host)
				h.flush(p.host)
			case ActPersistCommit:
				h.commit(p.host, p.coord, false)
			case ActRollback, ActRestore:
				h.parts[p.host].RolledBack(p.a.Rank, false)
				h.flush(p.host)
			default:
				h.answerMigrate(p, 0)
			}
		default:
			if quiet {
				h.printf("committed=%d inc=%d place=%v", h.coord.Committed(), h.coord.Inc(), h.coord.Place())
			}
			return
		}
		if quiet { // but for how migrations and drains end
			var keep []string
			for _, l := range strings.Split(h.out.String()[mark:], "\n") {
				if strings.HasPrefix(l, "coord: Migrated") || strings.HasPrefix(l, "coord: Drained") {
					keep = append(keep, l+"\n")
				}
			}
			h.out.Truncate(mark)
			h.out.WriteString(strings.Join(keep, ""))
		}
	}
}

// count prints the control messages each host sent or was sent, and per
// epoch.
func (h *protoHarness) count() {
	n := max(len(h.epochs), 1)
	for x := range h.parts {
		var kinds []string
		total := 0
		for k := MsgMarker; k <= MsgStop; k++ {
			if c := h.sent[HostID(x)][k]; c > 0 {
				kinds = append(kinds, fmt.Sprintf("%s=%d", k, c))
				total += c
			}
		}
		h.printf("h%d: %d over %d epochs (%.1f per epoch) %s", x, total, len(h.epochs), float64(total)/float64(n), strings.Join(kinds, " "))
	}
}
