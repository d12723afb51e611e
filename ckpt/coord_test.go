package ckpt

import (
	"errors"
	"testing"
)

func TestCoordinatorRounds(t *testing.T) {
	c := NewCoordinator(3, 4, 0)
	e, ok := c.Begin()
	if !ok || e != 5 {
		t.Fatalf("begin: %d %v", e, ok)
	}
	if _, ok := c.Begin(); ok {
		t.Fatal("a second round began while one is under way")
	}
	if c.Paused(0) || c.Paused(0) || c.Ended(2) {
		t.Fatal("cut due before every worker paused")
	}
	if !c.Paused(1) {
		t.Fatal("cut not due with every worker paused or ended")
	}
	if c.Durable(0, 5) || c.Durable(1, 5) || c.Durable(1, 5) || c.Durable(2, 4) {
		t.Fatal("commit due early")
	}
	if !c.Durable(2, 5) {
		t.Fatal("commit not due")
	}
	c.Done(true)
	if c.Committed() != 5 {
		t.Fatalf("committed %d", c.Committed())
	}
	// Worker 2 has ended: it counts as paused in every later round.
	e, _ = c.Begin()
	c.Paused(0)
	if !c.Paused(1) || e != 6 {
		t.Fatal("an ended worker held up the cut")
	}
	c.Durable(0, 6)
	if err := c.Failed(1, 6, errors.New("disk full")); err == nil {
		t.Fatal("failure not reported")
	}
	if c.Failed(2, 6, errors.New("again")) != nil || c.Durable(1, 6) || c.Durable(2, 6) {
		t.Fatal("a failed round went on")
	}
	c.Done(false)
	if e, _ := c.Begin(); e != 7 || c.Committed() != 5 {
		t.Fatalf("after a failed round: epoch %d, committed %d", e, c.Committed())
	}
}

func TestCommitRecords(t *testing.T) {
	cfg := testConfig(t)
	cfg.Keep = 2
	s := openTest(t, cfg)
	if cs, err := s.Commits("job"); err != nil || len(cs) != 0 {
		t.Fatalf("empty store: %v %v", cs, err)
	}
	for e := uint64(1); e <= 4; e++ {
		if err := s.CommitJob(Commit{Job: "job", Epoch: e, Workers: 4}); err != nil {
			t.Fatal(err)
		}
	}
	s.CommitJob(Commit{Job: "jobs", Epoch: 9, Workers: 2})
	cs, err := s.Commits("job")
	if err != nil || len(cs) != 2 || cs[0].Epoch != 3 || cs[1].Epoch != 4 || cs[1].Workers != 4 {
		t.Fatalf("commits: %+v %v", cs, err)
	}
	if err := s.DeleteCommitsAfter("job", 3); err != nil {
		t.Fatal(err)
	}
	cs, _ = s.Commits("job")
	other, _ := s.Commits("jobs")
	if len(cs) != 1 || cs[0].Epoch != 3 || len(other) != 1 {
		t.Fatalf("after delete: %+v, other job %+v", cs, other)
	}
	mutateValue(t, s, bucketCommits, commitKey("job", 3), func(v []byte) []byte { v[5] ^= 1; return v })
	if cs, _ := s.Commits("job"); len(cs) != 0 {
		t.Fatalf("a damaged commit record counts: %+v", cs)
	}
}
