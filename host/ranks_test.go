package host

import (
	"context"
	"slices"
	"testing"
)

// A rank whose worker moved to another host (OnPause returned ErrMoved)
// did not end here: RunRanks leaves it out of its result, so that a
// driver does not report it ended (a rank that moved away and came back
// was reported ended by its first run while it still ran).
func TestRunRanksLeavesOutMoved(t *testing.T) {
	module := testGuest(t, "testdata/count")
	res, err := RunRanks(context.Background(), RanksConfig{
		Module: module, Ranks: []int{0, 1}, Size: 2, Args: []string{"count", "300"},
		Endpoint: floodEndpoint(t, "a", 1<<20),
		Prepare: func(rank int, w *Worker) error {
			if rank == 0 {
				w.RequestCheckpoint() // its first capture point pauses it
			}
			return nil
		},
		OnPause: func(rank int, c *Capture) error {
			if rank == 0 {
				return ErrMoved
			}
			return nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(res.Ranks, []int{1}) || !slices.Equal(res.Codes, []int{0}) || len(res.Errs) != 1 || res.Errs[0] != nil {
		t.Fatalf("result %+v, want rank 1 alone, ended with 0", res)
	}
}
