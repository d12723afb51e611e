package main

import (
	"fmt"
	"testing"
	"time"
)

// roundEnds returns the times lines came for rounds of the given lengths
// (in ms), the first line at t0.
func roundEnds(t0 time.Time, ms ...int) []time.Time {
	ends := []time.Time{t0}
	for _, m := range ms {
		ends = append(ends, ends[len(ends)-1].Add(time.Duration(m)*time.Millisecond))
	}
	return ends
}

func TestStalls(t *testing.T) {
	t0 := time.Unix(1000, 0)
	ms := time.Millisecond
	// Rounds of 100 ms, then a checkpoint under way from 1050 ms to
	// 1400 ms that stretches the two rounds it overlaps to 300 and 200 ms,
	// then rounds of 120 ms (the guest's speed drifted).
	lengths := []int{100, 100, 100, 100, 100, 100, 100, 100, 100, 100, 300, 200}
	for range 10 {
		lengths = append(lengths, 120)
	}
	ends := roundEnds(t0, lengths...)
	spans := [][2]time.Time{{t0.Add(1050 * ms), t0.Add(1400 * ms)}}
	stalled, between := stalls(ends, spans)
	// The neighbours: ten rounds of 100 ms and ten of 120 ms, median
	// (the upper of the two middle ones) 120 ms; two rounds overlap.
	if want := 500*ms - 2*120*ms; stalled != want {
		t.Errorf("stalled %v, want %v", stalled, want)
	}
	if between != 120*ms {
		t.Errorf("between %v, want 120ms", between)
	}

	// Two checkpoints: each stall is measured against its own neighbours.
	lengths = []int{50, 50, 50, 50, 250, 50, 50, 50, 80, 80, 80, 80, 380, 80, 80}
	ends = roundEnds(t0, lengths...)
	spans = [][2]time.Time{
		{t0.Add(210 * ms), t0.Add(300 * ms)},  // round 4 (200–450 ms)
		{t0.Add(950 * ms), t0.Add(1000 * ms)}, // round 12 (920–1300 ms)
	}
	stalled, _ = stalls(ends, spans)
	// Round 4: four rounds of 50 ms before it, and after it three of
	// 50 ms and six of 80 ms (round 12 overlaps a checkpoint): median
	// 50 ms. Round 12: ten rounds before it (round 4 left out), four of
	// 80 ms and six of 50 ms, and two of 80 ms after: median 80 ms.
	if want := (250*ms - 50*ms) + (380*ms - 80*ms); stalled != want {
		t.Errorf("two checkpoints: stalled %v, want %v", stalled, want)
	}

	// No checkpoint: nothing stalled, between is the median round.
	stalled, between = stalls(roundEnds(t0, 10, 30, 20), nil)
	if stalled != 0 || between != 20*ms {
		t.Errorf("no checkpoint: %v, %v", stalled, between)
	}
}

func TestLineLog(t *testing.T) {
	var l lineLog
	l.keep = true
	for _, p := range []string{"checkpoint 1 dur", "able\nround 1\n", "round 2\nro", "und 3\n"} {
		fmt.Fprint(&l, p)
	}
	want := []string{"checkpoint 1 durable", "round 1", "round 2", "round 3"}
	if fmt.Sprint(l.lines) != fmt.Sprint(want) || len(l.times) != len(want) {
		t.Errorf("lines %q (%d times), want %q", l.lines, len(l.times), want)
	}
}

func TestCheckpointSpans(t *testing.T) {
	var l lineLog
	l.keep = true
	fmt.Fprintln(&l, "librahost: checkpoint 1: 862.9 MiB of 1.0 GiB written")
	fmt.Fprintln(&l, "librahost: checkpoint 1 durable: 1.0 GiB memory (1.0 GiB hashed), 234.7 MiB written, pause 558µs (copy-on-write), write 1.42s")
	spans := checkpointSpans(l)
	if len(spans) != 1 {
		t.Fatalf("spans %v, want one", spans)
	}
	if d := spans[0][1].Sub(spans[0][0]); d != 1420*time.Millisecond+558*time.Microsecond {
		t.Errorf("span %v, want 1.420558s", d)
	}
	if !spans[0][1].Equal(l.times[1]) {
		t.Errorf("span ends %v, want the durable line's time %v", spans[0][1], l.times[1])
	}
}
