package job

import (
	"testing"
	"time"
)

func TestPacer(t *testing.T) {
	t0 := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	p := &pacer{share: 0.2}
	if !p.due(t0) {
		t.Fatal("the first periodic checkpoint held back")
	}
	// A pause of 1 ms: the next may begin 5 ms after it ended.
	if next := p.held(t0, time.Millisecond); !next.Equal(t0.Add(5 * time.Millisecond)) {
		t.Fatalf("next %v", next.Sub(t0))
	}
	if !p.due(t0.Add(time.Second)) {
		t.Fatal("a cheap checkpoint held the next one back")
	}
	// One that held the guest up 1 s and ended at t1: none begins within
	// 5 s of its end, so that the guest stood 1 s for every 5 it ran.
	t1 := t0.Add(3 * time.Second)
	p.held(t1, time.Second)
	if p.due(t1.Add(4*time.Second)) || !p.due(t1.Add(5*time.Second)) {
		t.Fatalf("next %v after the costly checkpoint ended, want 5s", p.next.Sub(t1))
	}
	// An older round's commit, reported after a newer one's, does not
	// move the time back.
	p.held(t0, 2*time.Millisecond)
	if !p.next.Equal(t1.Add(5 * time.Second)) {
		t.Fatalf("next moved back to %v", p.next.Sub(t1))
	}
	// At 100 %, the guest runs as long as it stood.
	all := &pacer{share: 1}
	if next := all.held(t0, time.Second); !next.Equal(t0.Add(time.Second)) {
		t.Fatalf("--checkpoint-overhead 100%%: next %v after the end", next.Sub(t0))
	}
	// No limit.
	q := &pacer{}
	q.held(t0, time.Hour)
	if !q.due(t0) {
		t.Fatal("a pacer without a share held a checkpoint back")
	}
}

func TestPacerLine(t *testing.T) {
	t0 := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	p := &pacer{share: 0.2}
	if line := p.after(1, "the guest", t0, t0.Add(100*time.Millisecond), time.Millisecond, time.Second); line != "" {
		t.Fatalf("a cheap checkpoint said %q", line)
	}
	// Begun at t0+1s (its ranks stopped late), ended 5 s later.
	want := "checkpoint 2 held the guest up 1s: the next periodic one begins no sooner than 5s after it ended, not 1s after it began (--checkpoint-overhead 20%)"
	if line := p.after(2, "the guest", t0.Add(time.Second), t0.Add(6*time.Second), time.Second, time.Second); line != want {
		t.Fatalf("line %q, want %q", line, want)
	}
}
