package wasi

import (
	"strings"
	"testing"
)

// TestDeterministicRun runs a guest that prints times, a sleep, random
// bytes and a map's order twice: the outputs are identical, the sleep's
// length included, which only virtual time gives (no wall-clock bound: a
// loaded machine may take long).
func TestDeterministicRun(t *testing.T) {
	var outs []string
	for _, seed := range []uint64{1, 1, 2} {
		res := runGuest(t, Config{Args: []string{"guest", "det"}, Deterministic: true, Seed: seed})
		if res.err != nil || res.exit != 0 {
			t.Fatalf("guest: %d %v\n%s", res.exit, res.err, res.stderr)
		}
		outs = append(outs, res.stdout)
	}
	if outs[0] != outs[1] {
		t.Fatalf("two runs differ:\n%s\n%s", outs[0], outs[1])
	}
	if outs[0] == outs[2] {
		t.Fatalf("seeds 1 and 2 gave the same output:\n%s", outs[0])
	}
	if !strings.Contains(outs[0], "now: 15778368") || !strings.Contains(outs[0], "slept: 50.0") {
		t.Fatalf("unexpected output:\n%s", outs[0])
	}
}

// TestDeterministicRestore checks that a restored System continues the
// clock and the random stream where the snapshot left them.
func TestDeterministicRestore(t *testing.T) {
	cfg := Config{Deterministic: true, Seed: 42}
	reads := func(h *harness, n int) []uint64 {
		var out []uint64
		for i := 0; i < n; i++ {
			if e := h.call("clock_time_get", clockMonotonic, 1, resAt); e != 0 {
				t.Fatal(e)
			}
			out = append(out, h.u64(resAt))
			if e := h.call("clock_time_get", clockRealtime, 1, resAt); e != 0 {
				t.Fatal(e)
			}
			out = append(out, h.u64(resAt))
			if e := h.call("random_get", scratch, 8); e != 0 {
				t.Fatal(e)
			}
			out = append(out, h.u64(scratch))
		}
		return out
	}
	a := newHarness(t, cfg)
	reads(a, 3)
	snap, err := a.s.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	want := reads(a, 5)
	b := newHarness(t, cfg)
	if err := b.s.Restore(snap); err != nil {
		t.Fatal(err)
	}
	got := reads(b, 5)
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("after restore, value %d is %d, want %d", i, got[i], want[i])
		}
	}
	if c := newHarness(t, Config{}); c.s.Restore(snap) == nil {
		t.Fatal("a deterministic snapshot restored into a non-deterministic System")
	}
}
