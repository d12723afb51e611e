package job

import (
	"context"
	"testing"

	"github.com/librahost/librahost/host"
)

// No periodic checkpoint is asked for while a round is under way (the
// guest's own, or one being written): it would pause the ranks again as
// soon as they go on, so that after a long pause they ran for nothing
// between two checkpoints.
func TestTickSkipsRound(t *testing.T) {
	w, err := host.NewWorker(context.Background(), host.Config{Module: testGuest(t, "../testdata/count.c")})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close(context.Background())
	j := &jobRun{n: 1, ready: true, workers: []*host.Worker{w}, ended: []bool{false}, codes: []int{0}}
	j.cond.L = &j.mu
	if err := j.cores(); err != nil {
		t.Fatal(err)
	}
	j.tick()
	if e := j.coord.Round(); e != 1 || !w.Pending() || j.asked[0] != 1 {
		t.Fatalf("the first tick began round %d, asked the rank for %d (pending %v)", e, j.asked[0], w.Pending())
	}
	j.tick()
	if e := j.coord.Round(); e != 1 || j.asked[0] != 1 {
		t.Fatalf("a tick during round 1 began round %d, asked the rank for %d", e, j.asked[0])
	}
}
