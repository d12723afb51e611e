package job

import (
	"context"
	"testing"
	"time"

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
	j.tick(true)
	if e := j.coord.Round(); e != 1 || !w.Pending() || j.asked[0] != 1 {
		t.Fatalf("the first tick began round %d, asked the rank for %d (pending %v)", e, j.asked[0], w.Pending())
	}
	j.tick(true)
	if e := j.coord.Round(); e != 1 || j.asked[0] != 1 {
		t.Fatalf("a tick during round 1 began round %d, asked the rank for %d", e, j.asked[0])
	}
}

// A periodic tick waits while the pacer holds it back (a costly
// checkpoint before it); a checkpoint a full sender log asks for does not.
func TestTickPaced(t *testing.T) {
	w, err := host.NewWorker(context.Background(), host.Config{Module: testGuest(t, "../testdata/count.c")})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close(context.Background())
	j := &jobRun{n: 1, ready: true, workers: []*host.Worker{w}, ended: []bool{false}, codes: []int{0}, pace: pacer{share: 0.2}}
	j.cond.L = &j.mu
	if err := j.cores(); err != nil {
		t.Fatal(err)
	}
	j.pace.held(time.Now(), time.Hour)
	j.tick(true)
	if e := j.coord.Round(); e != 0 || w.Pending() {
		t.Fatalf("a periodic tick held back by the pacer began round %d (pending %v)", e, w.Pending())
	}
	j.tick(false)
	if e := j.coord.Round(); e != 1 || !w.Pending() {
		t.Fatalf("a tick asked for began round %d (pending %v)", e, w.Pending())
	}
}
