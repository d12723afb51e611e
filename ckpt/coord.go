package ckpt

import "fmt"

// Coordinator is the core of the coordinated checkpoint protocol of one
// job: a plain state machine (no goroutines, clock or I/O) that the host's
// driver feeds with what its workers did and that says what to do next.
//
// A round is one job epoch: Begin asks every worker for a checkpoint;
// each reports Paused at its next capture point (a worker that has ended
// counts as paused); once all are, the driver takes the cut (the channel
// state) and every worker writes its checkpoint; each reports Durable or
// Failed; when all are durable the driver writes the commit record and
// reports Committed. One round runs at a time.
type Coordinator struct {
	n         int
	next      uint64 // epoch of the next round
	committed uint64 // newest committed epoch
	round     uint64 // epoch of the round under way, 0 if none
	cut       bool   // the round's cut is taken
	paused    []bool
	durable   []bool
	ended     []bool
	nPaused   int
	nDurable  int
	failed    error
}

// NewCoordinator returns the coordinator of a job of n workers whose newest
// committed epoch is committed and whose next round gets epoch next.
func NewCoordinator(n int, committed, next uint64) *Coordinator {
	return &Coordinator{n: n, committed: committed, next: max(next, committed+1),
		paused: make([]bool, n), durable: make([]bool, n), ended: make([]bool, n)}
}

// Begin starts a round and returns its epoch, or false if one is under way.
// The driver then asks every worker that has not ended for a checkpoint.
func (c *Coordinator) Begin() (uint64, bool) {
	if c.round != 0 {
		return c.round, false
	}
	c.round, c.cut, c.failed = c.next, false, nil
	c.next++
	c.nPaused, c.nDurable = 0, 0
	for w := range c.n {
		c.paused[w], c.durable[w] = c.ended[w], false
		if c.ended[w] {
			c.nPaused++
		}
	}
	return c.round, true
}

// Round returns the epoch of the round under way (0 if none) and whether
// its cut was taken.
func (c *Coordinator) Round() (uint64, bool) { return c.round, c.cut }

// Paused records that worker w stopped at a capture point for the round.
// It returns true when every worker is paused: take the cut now.
func (c *Coordinator) Paused(w int) bool {
	if c.round == 0 || c.cut || c.paused[w] {
		return false
	}
	c.paused[w] = true
	c.nPaused++
	return c.allPaused()
}

// Ended records that worker w's program ended: it is paused for this
// round and every later one. It returns true if the cut is due now.
func (c *Coordinator) Ended(w int) bool {
	if c.ended[w] {
		return false
	}
	c.ended[w] = true
	if c.round == 0 || c.cut || c.paused[w] {
		return false
	}
	c.paused[w] = true
	c.nPaused++
	return c.allPaused()
}

func (c *Coordinator) allPaused() bool {
	if c.nPaused == c.n {
		c.cut = true
		return true
	}
	return false
}

// Durable records that worker w's checkpoint of epoch is durable. It
// returns true when the whole round is: write the commit record.
func (c *Coordinator) Durable(w int, epoch uint64) bool {
	if epoch != c.round || !c.cut || c.durable[w] || c.failed != nil {
		return false
	}
	c.durable[w] = true
	c.nDurable++
	return c.nDurable == c.n
}

// Failed records that worker w's checkpoint of epoch could not be made:
// the round is abandoned (its epoch never counts) and its error returned
// once; the next round takes a new epoch.
func (c *Coordinator) Failed(w int, epoch uint64, err error) error {
	if epoch != c.round || c.failed != nil {
		return nil
	}
	c.failed = fmt.Errorf("worker %d: %w", w, err)
	return c.failed
}

// Done ends the round under way: committed if its commit record was
// written, abandoned otherwise.
func (c *Coordinator) Done(committed bool) {
	if committed && c.failed == nil {
		c.committed = c.round
	}
	c.round, c.cut = 0, false
}

// Committed returns the newest committed epoch.
func (c *Coordinator) Committed() uint64 { return c.committed }
