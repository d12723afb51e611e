package ckpt

import (
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/librahost/librahost/internal/scripttest"
)

// TestProtoMigrateScripts runs the golden scripts of migrations and drains
// in testdata/migrate, with the commands of TestProtoScripts and these:
//
//	migrate rank=r to=h            the command asks the coordinator to move rank to h
//	drain host=h | undrain host=h  the command drains or undrains h
//	copied rank=r [dirty=N]        the pending Copy of rank is durable at its target, N bytes dirty since
//	halted rank=r                  rank stopped at a capture point, as Halt asked
//	final rank=r                   the pending Final of rank is durable at its target
//	migfail rank=r err=TEXT...     rank's migration failed at its source (the rest of the line is why)
//	place                          where the coordinator places each rank, and what each live host runs
//	migconf [small=N] [stall=N] [rounds=N] [wait=D] [topup=D]   change the pre-copy settings of every core
//
// auto answers Copy with nothing dirty, Halt and Final at once.
func TestProtoMigrateScripts(t *testing.T) {
	files, _ := filepath.Glob("testdata/migrate/*.txt")
	if len(files) == 0 {
		t.Fatal("no scripts in testdata/migrate")
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			h := &protoHarness{t: t}
			scripttest.Run(t, file, *rewrite, h.run)
		})
	}
}

// runMigrate runs a migration command of a script; false if cmd is none.
func (h *protoHarness) runMigrate(line, cmd string, args map[string]string, num func(string, int) int) bool {
	refused := func(err error) {
		if err != nil {
			if !errors.Is(err, ErrMigrate) {
				h.t.Fatalf("%s: %v does not wrap ErrMigrate", line, err)
			}
			h.printf("error: %v", err)
		}
	}
	switch cmd {
	case "migrate":
		refused(h.coord.Migrate(num("rank", 0), HostID(num("to", 0))))
		h.flushCoord()
	case "drain":
		refused(h.coord.Drain(HostID(num("host", 0))))
		h.flushCoord()
	case "undrain":
		refused(h.coord.Undrain(HostID(num("host", 0))))
		h.flushCoord()
	case "copied", "halted", "final":
		kind := map[string]ActionKind{"copied": ActCopy, "halted": ActHalt, "final": ActFinal}[cmd]
		r := num("rank", 0)
		p, ok := h.take(kind, r, -1)
		if !ok {
			h.t.Fatalf("%s: rank %d has no %s pending", line, r, kind)
		}
		h.answerMigrate(p, int64(num("dirty", 0)))
	case "progress":
		r := num("rank", 0)
		x := h.host(r)
		h.parts[x].CopyProgress(r, num("round", 1), h.now)
		h.flush(x)
	case "migfail":
		before, why, _ := strings.Cut(line, " err=")
		var r int
		if _, err := fmt.Sscanf(before, "migfail rank=%d", &r); err != nil {
			h.t.Fatalf("%s: %v", line, err)
		}
		x := h.host(r)
		h.parts[x].MigrateFailed(r, why)
		h.flush(x)
	case "migconf":
		set := func(c *ProtoConfig) {
			c.MigrateSmall = int64(num("small", int(c.MigrateSmall)))
			c.MigrateStall = num("stall", c.MigrateStall)
			c.MigrateRounds = num("rounds", c.MigrateRounds)
			if w, ok := args["wait"]; ok {
				d, err := time.ParseDuration(w)
				if err != nil {
					h.t.Fatalf("%s: %v", line, err)
				}
				c.MigrateWait = d
			}
			if w, ok := args["topup"]; ok {
				d, err := time.ParseDuration(w)
				if err != nil {
					h.t.Fatalf("%s: %v", line, err)
				}
				c.MigrateTopUp = d
			}
		}
		set(&h.cfg)
		set(&h.coord.cfg)
		for _, p := range h.parts {
			set(&p.cfg)
		}
	case "place":
		h.printf("coord: place=%v", h.coord.Place())
		for x, p := range h.parts {
			if !h.crashed[x] {
				h.printf("h%d runs %v", x, p.Ranks())
			}
		}
	default:
		return false
	}
	return true
}

// answerMigrate answers a pending Copy (with dirty bytes), Halt or Final.
func (h *protoHarness) answerMigrate(p pendingAction, dirty int64) {
	part := h.parts[p.host]
	switch p.a.Kind {
	case ActCopy:
		part.CopyDurable(p.a.Rank, p.a.Round, dirty, h.now)
	case ActHalt:
		part.MigratePaused(p.a.Rank, h.now)
	case ActFinal:
		part.FinalDurable(p.a.Rank, h.now)
	default:
		h.t.Fatalf("no answer to %s", p.a)
	}
	h.flush(p.host)
}

// TestProtoMigrateControlMessages: a migration costs the coordinator's
// host MIGRATE and SWITCH to the source, COPIED, MOVED from it and a
// ROUTE per host, however many pre-copy rounds it takes; the round begun
// after the move commits the new placement.
func TestProtoMigrateControlMessages(t *testing.T) {
	h := &protoHarness{t: t}
	h.job(3, 6, 1, 0, "", 0)
	if err := h.coord.Migrate(1, 2); err != nil {
		t.Fatal(err)
	}
	h.flushCoord()
	h.deliver(func(Msg) bool { return true }, -1)
	for round, dirty := range []int64{64 << 20, 32 << 20, 16 << 20, 1 << 20} {
		p, ok := h.take(ActCopy, 1, 1)
		if !ok || p.a.Round != round+1 {
			t.Fatalf("round %d: no Copy pending: %v", round+1, h.pending)
		}
		h.answerMigrate(p, dirty)
	}
	h.auto(true, false)
	if got := h.coord.Place(); !slices.Equal(got, []HostID{0, 2, 2, 0, 1, 2}) || h.coord.Committed() != 1 {
		t.Fatalf("place %v committed %d", got, h.coord.Committed())
	}
	want := map[HostID]map[MsgKind]int{
		0: {MsgRoute: 1, MsgMarker: 1, MsgDone: 1, MsgCommit: 1},
		1: {MsgMigrate: 1, MsgCopied: 1, MsgSwitch: 1, MsgMoved: 1, MsgRoute: 1, MsgMarker: 1, MsgDone: 1, MsgCommit: 1},
		2: {MsgRoute: 1, MsgMarker: 1, MsgDone: 1, MsgCommit: 1},
	}
	for x, kinds := range want {
		for k, n := range kinds {
			if h.sent[x][k] != n {
				t.Errorf("h%d: %d %s, want %d (all: %v)", x, h.sent[x][k], k, n, h.sent[x])
			}
		}
	}
}

func TestProtoMigrateConfig(t *testing.T) {
	cfg := ProtoConfig{Hosts: 2, Place: []HostID{0, 1}, MigrateStall: -1}
	if _, err := NewEpochCoordinator(cfg, 0); err == nil || !strings.Contains(err.Error(), "migration settings") {
		t.Fatalf("negative stall: %v", err)
	}
	cfg.MigrateStall = 0
	p, err := NewParticipant(cfg, 0)
	if err != nil {
		t.Fatal(err)
	}
	if p.cfg.MigrateSmall != DefaultMigrateSmall || p.cfg.MigrateStall != DefaultMigrateStall ||
		p.cfg.MigrateRounds != DefaultMigrateRounds || p.cfg.MigrateTimeout != DefaultMigrateTimeout ||
		p.cfg.MigrateWait != DefaultMigrateWait || p.cfg.MigrateTopUp != DefaultMigrateTopUp {
		t.Fatalf("defaults: %+v", p.cfg)
	}
}
