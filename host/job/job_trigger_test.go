package job

import (
	"context"
	"testing"

	"github.com/librahost/librahost/ckpt"
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
	j := &jobRun{n: 1, ready: true, coord: ckpt.NewCoordinator(1, 0, 1), workers: []*host.Worker{w}, ended: []bool{false}}
	j.cond.L = &j.mu
	j.coord.Begin()
	j.tick()
	if w.Pending() {
		t.Fatal("a checkpoint was asked for during a round")
	}
	j.coord.Done(true)
	j.tick()
	if e, _ := j.coord.Round(); !w.Pending() || e != 2 {
		t.Fatalf("no checkpoint asked for between rounds (round %d)", e)
	}
}
