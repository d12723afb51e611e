package job

import (
	"context"
	"errors"
	"io"
	"slices"
	"testing"
	"testing/synctest"

	"github.com/librahost/librahost/ckpt"
	"github.com/librahost/librahost/host"
	"github.com/librahost/librahost/transport"
)

// A moved rank's checkpoint is reported durable only once the copy of its
// earlier checkpoints to this host's replica hosts is done (copied): the
// wait returns the copy's error and begins the copy again for the next
// round, and a rollback ends it.
func TestMovedCopyGatesDurable(t *testing.T) {
	store := testStore(t, ckpt.Config{})
	p, err := store.Capture(ckpt.Meta{Key: ckpt.Key{Job: "job", Worker: 1}, Epoch: 4}, make([]byte, 1<<16))
	if err != nil {
		t.Fatal(err)
	}
	<-p.Done()
	if err := p.Err(); err != nil {
		t.Fatal(err)
	}
	proto := ckpt.ProtoConfig{Hosts: 2, Place: []ckpt.HostID{0, 1}, Replicas: 1}
	part, err := ckpt.NewParticipant(proto, 0)
	if err != nil {
		t.Fatal(err)
	}
	synctest.Test(t, func(t *testing.T) {
		j := &jobRun{cfg: Config{Log: io.Discard}, rec: &runRecord{Job: "job"}, store: store}
		var copies []uint64
		r := &shareRun{j: j, s: &Share{Proto: proto, Replicate: func(rank int, epoch uint64, to ckpt.HostID) error {
			if rank == 1 && to == 1 {
				copies = append(copies, epoch)
			}
			return nil
		}}, part: part,
			copies: map[int]*movedCopy{}, rollGen: make(chan struct{})}
		if err := r.copied(1); err != nil {
			t.Fatalf("no copy under way: %v", err)
		}
		mc := &movedCopy{epoch: 4, to: []ckpt.HostID{1}, done: make(chan struct{})}
		r.copies[1] = mc
		got := make(chan error, 1)
		go func() { got <- r.copied(1) }()
		synctest.Wait()
		select {
		case err := <-got:
			t.Fatalf("reported before the copy was done: %v", err)
		default:
		}
		mc.err = errors.New("replica to host h1: refused")
		close(mc.done)
		if err := <-got; err != mc.err {
			t.Fatalf("a failed copy: %v, want its error", err)
		}
		again := r.copies[1]
		if again == nil || again == mc || again.epoch != 4 {
			t.Fatalf("the copy was not begun again: %+v", again)
		}
		if err := r.copied(1); err != nil || r.copies[1] != nil || len(copies) != 1 || copies[0] != 4 {
			t.Fatalf("the copy begun again: %v, %+v left, epochs %v copied to h1, want [4]", err, r.copies[1], copies)
		}

		r.copies[1] = &movedCopy{epoch: 5, done: make(chan struct{})}
		go func() { got <- r.copied(1) }()
		synctest.Wait()
		close(r.rollGen)
		if err := <-got; err == nil {
			t.Fatal("a rollback did not end the wait")
		}
	})
}

// A share whose ranks had all ended at the epoch a recovery restores
// reports how each of its own ranks ended, one code per rank (the codes
// of the job's every rank made the submitter refuse the EXIT: "lists
// differ in length").
func TestShareEndedAtRestore(t *testing.T) {
	ep, err := transport.NewEndpoint(transport.EndpointConfig{Host: "local", Route: func(uint32) transport.HostID { return "local" }})
	if err != nil {
		t.Fatal(err)
	}
	defer ep.Close()
	j := &jobRun{n: 6, ranks: []int{1, 4}, ended: make([]bool, 6), codes: make([]int, 6), rec: &runRecord{},
		cfg: Config{Log: io.Discard, Endpoint: ep, RankOutput: func(int, byte) io.Writer { return io.Discard }}}
	j.ended[1], j.ended[4], j.codes[4] = true, true, 3
	res, err := j.run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(res.Ranks, []int{1, 4}) || !slices.Equal(res.Codes, []int{0, 3}) || len(res.Errs) != 2 {
		t.Fatalf("ranks %v codes %v, %d errors; want [1 4], [0 3], 2", res.Ranks, res.Codes, len(res.Errs))
	}
}

// A share whose ranks ran again after a recovery, but for one whose
// program had ended at the epoch restored, reports that one too, with its
// exit code, in the order of its ranks (the submitter waited for ever for
// its exit).
func TestShareEndedAtRestoreWithRun(t *testing.T) {
	j := &jobRun{n: 6, ranks: []int{0, 2, 3, 5}, ended: make([]bool, 6), codes: make([]int, 6)}
	j.ended[3], j.codes[3] = true, 4
	ran := host.RanksResult{Ranks: []int{0, 2, 5}, Codes: []int{0, 1, 0}, Errs: []error{nil, nil, errors.New("trap")}}
	res := j.withEnded(ran)
	if !slices.Equal(res.Ranks, []int{0, 2, 3, 5}) || !slices.Equal(res.Codes, []int{0, 1, 4, 0}) ||
		len(res.Errs) != 4 || res.Errs[2] != nil || res.Errs[3] == nil {
		t.Fatalf("ranks %v codes %v errors %v; want [0 2 3 5], [0 1 4 0], the last only", res.Ranks, res.Codes, res.Errs)
	}
}
