package ckpt

import (
	"strings"
	"testing"
	"time"
)

// TestProtoControlMessages runs failure-free epochs of jobs of several
// sizes and counts the control messages: three per host per epoch (a
// MARKER, a DONE, a COMMIT), whatever the number of ranks, and with two
// rounds under way at once.
func TestProtoControlMessages(t *testing.T) {
	for _, tc := range []struct{ hosts, ranks, replicas, rounds int }{{1, 4, 0, 1}, {3, 4, 1, 1}, {3, 16, 2, 1}, {5, 64, 1, 1},
		{1, 4, 0, 2}, {3, 16, 2, 2}, {5, 64, 1, 2}} {
		h := &protoHarness{t: t}
		h.job(tc.hosts, tc.ranks, tc.replicas, 0, "", tc.rounds)
		const epochs = 20
		for range epochs / tc.rounds {
			for range tc.rounds {
				if h.coord.Trigger() == 0 {
					t.Fatal("no round began")
				}
				h.flushCoord()
			}
			h.auto(true, false)
		}
		if h.coord.Committed() != epochs {
			t.Fatalf("%+v: committed %d of %d epochs", tc, h.coord.Committed(), epochs)
		}
		for x := range tc.hosts {
			total := 0
			for _, n := range h.sent[HostID(x)] {
				total += n
			}
			if total != 3*epochs {
				t.Errorf("%+v: host %d: %d control messages in %d epochs, want %d", tc, x, total, epochs, 3*epochs)
			}
		}
	}
}

func TestProtoConfig(t *testing.T) {
	for _, tc := range []struct {
		cfg  ProtoConfig
		want string
	}{
		{ProtoConfig{}, "at least one host"},
		{ProtoConfig{Hosts: 2, Coordinator: 2, Place: []HostID{0}}, "coordinator host 2"},
		{ProtoConfig{Hosts: 2}, "at least one rank"},
		{ProtoConfig{Hosts: 2, Place: []HostID{0, 3}}, "rank 1 is placed on host 3"},
		{ProtoConfig{Hosts: 2, Place: []HostID{0}, Replicas: -1}, "replicas must be 0 or more"},
		{ProtoConfig{Hosts: 2, Place: []HostID{0}, MaxRounds: -1}, "rounds under way at once must be 1 or more"},
		{ProtoConfig{Hosts: 2, Place: []HostID{0, 1}, Committed: 4}, "holders of 0 ranks"},
	} {
		if _, err := NewEpochCoordinator(tc.cfg, 0); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want %q", tc.cfg, err, tc.want)
		}
	}
	cfg := ProtoConfig{Hosts: 3, Place: []HostID{0, 1, 2}, Replicas: 5}
	c, err := NewEpochCoordinator(cfg, 0)
	if err != nil {
		t.Fatal(err)
	}
	if c.cfg.Replicas != 2 || c.cfg.FailureTimeout != DefaultFailureTimeout || c.cfg.MaxRounds != 1 {
		t.Fatalf("defaults: replicas %d, timeout %v", c.cfg.Replicas, c.cfg.FailureTimeout)
	}
	if _, err := NewParticipant(cfg, 3); err == nil {
		t.Fatal("a participant of a host outside the job")
	}
}

// TestProtoResume starts the cores from a committed epoch, as a resumed
// job does: the next round takes a new epoch, and a host lost before it
// rolls back to the committed one with its holders.
func TestProtoResume(t *testing.T) {
	cfg := ProtoConfig{Hosts: 2, Place: []HostID{0, 1}, Inc: 3, Committed: 7,
		Holders: [][]HostID{{0, 1}, {1, 0}}}
	c, err := NewEpochCoordinator(cfg, 9)
	if err != nil {
		t.Fatal(err)
	}
	c.Start(time.Unix(0, 0))
	c.Tick(time.Unix(5, 0))
	rd := c.Ready()
	if len(rd.Msgs) != 2 || rd.Msgs[0].Kind != MsgRollback || rd.Msgs[0].Epoch != 7 || rd.Msgs[0].Inc != 4 ||
		rd.Msgs[0].Place[1] != 0 || rd.Msgs[1].Kind != MsgStop || rd.Msgs[1].To != 1 {
		t.Fatalf("after host 1 went silent: %v", rd.Msgs)
	}
	c.Step(Msg{Kind: MsgRecovered, From: 0, Inc: 4}, time.Unix(5, 0))
	rd = c.Ready()
	if len(rd.Msgs) != 2 || rd.Msgs[1].Kind != MsgMarker || rd.Msgs[1].Epoch != 9 {
		t.Fatalf("after recovery: %v", rd.Msgs)
	}
}

// TestProtoHeld: each host's DONE carries the longest its ranks were held
// up by their checkpoints, and the coordinator's commit action the
// longest of all hosts', which the driver paces periodic rounds by.
func TestProtoHeld(t *testing.T) {
	cfg := ProtoConfig{Hosts: 2, Place: []HostID{0, 1, 1}}
	c, err := NewEpochCoordinator(cfg, 0)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1700000000, 0)
	c.Start(now)
	parts := make([]*Participant, 2)
	for h := range parts {
		if parts[h], err = NewParticipant(cfg, HostID(h)); err != nil {
			t.Fatal(err)
		}
		parts[h].Start(now)
	}
	e := c.Trigger()
	for _, m := range c.Ready().Msgs {
		parts[m.To].Step(m, now)
	}
	held := map[int]time.Duration{0: 3 * time.Millisecond, 1: 900 * time.Millisecond, 2: 40 * time.Millisecond}
	var done []Msg
	for h, p := range parts {
		p.Ready()
		for _, r := range p.Ranks() {
			p.Paused(r, e)
			p.Durable(r, e, Hash{byte(r + 1)}, held[r])
			for _, a := range p.Ready().Actions {
				if a.Kind == ActReplicate {
					p.Replicated(r, e, a.Host)
				}
			}
		}
		for _, m := range p.Ready().Msgs {
			if m.Kind == MsgDone {
				if want := map[int]time.Duration{0: 3 * time.Millisecond, 1: 900 * time.Millisecond}[h]; m.Held != want {
					t.Errorf("host %d's DONE says held %v, want %v", h, m.Held, want)
				}
				done = append(done, m)
			}
		}
	}
	if len(done) != 2 {
		t.Fatalf("%d DONE messages, want 2", len(done))
	}
	for _, m := range done {
		c.Step(m, now)
	}
	var commit *Action
	for _, a := range c.Ready().Actions {
		if a.Kind == ActPersistCommit {
			commit = &a
		}
	}
	if commit == nil || commit.Epoch != e || commit.Held != 900*time.Millisecond {
		t.Fatalf("commit action %+v, want epoch %d held 900ms", commit, e)
	}
}
