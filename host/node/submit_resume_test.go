package node

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/librahost/librahost/ckpt"
)

// planResume resumes from the newest committed epoch whose every rank
// the hosts given hold, places each rank on a host that holds it, runs
// the coordinator on the first host given, begins past every epoch held,
// and refuses in one line what cannot resume.
func TestPlanResume(t *testing.T) {
	// Job of 4 ranks on a, b, c (a: 0,3; b: 1; c: 2), one replica each
	// on the next host; a is lost.
	spec := &prepareMsg{Job: "j1", N: 4, Placement: []string{"a", "b", "c", "a"}, CheckpointEvery: 1, Replicas: 1}
	rec := func(e, inc uint64) *ckpt.CommitRecord {
		return &ckpt.CommitRecord{Epoch: e, Inc: inc, Place: []ckpt.HostID{0, 1, 2, 0}}
	}
	held := func(e uint64, ranks ...int) (out []heldCkpt) {
		for _, r := range ranks {
			out = append(out, heldCkpt{Rank: r, Epoch: e})
		}
		return out
	}
	b := holdsMsg{Spec: spec, Module: "m", Inc: 1, Records: []*ckpt.CommitRecord{rec(2, 0), rec(3, 1)},
		Held:    slices.Concat(held(2, 0, 1, 3), held(3, 1, 3), held(4, 1)),
		Printed: []printedOff{{Rank: 0, Stream: 1, Off: 10}}, PrintedKept: true}
	c := holdsMsg{Spec: spec, Module: "m", Records: []*ckpt.CommitRecord{rec(2, 0)},
		Held: slices.Concat(held(2, 1, 2), held(3, 1, 2)), Printed: []printedOff{{Rank: 0, Stream: 1, Off: 7}, {Rank: 2, Stream: 2, Off: 3}}, PrintedKept: true}

	// Epoch 3 lacks rank 0 on b and c: epoch 2 it is.
	p, err := planResume("j1", []string{"b", "c"}, []holdsMsg{b, c})
	if err != nil {
		t.Fatal(err)
	}
	if p.resume.Epoch != 2 || p.resume.Next != 5 || p.resume.Inc != 1 || p.resume.Coordinator != 1 ||
		!slices.Equal(p.resume.Live, []bool{false, true, true}) || !strings.Contains(p.note, "rank 0's checkpoint of epoch 3 is on no host given") {
		t.Fatalf("plan %+v, note %q", p.resume, p.note)
	}
	if !slices.Equal(p.placement, []string{"b", "b", "c", "b"}) {
		t.Fatalf("placement %v", p.placement)
	}
	if p.printed[[2]int{0, 1}] != 10 || p.printed[[2]int{2, 2}] != 3 {
		t.Fatalf("printed %v", p.printed)
	}
	if strings.Contains(p.note, "no host knows") {
		t.Fatalf("note %q", p.note)
	}
	// A host that kept an empty list knows nothing was printed; with no
	// host keeping one, output goes on from the epoch's, and the note says so.
	for _, kept := range []bool{true, false} {
		b0, c0 := b, c
		b0.Printed, c0.Printed, b0.PrintedKept, c0.PrintedKept = nil, nil, kept, false
		p, err := planResume("j1", []string{"b", "c"}, []holdsMsg{b0, c0})
		if err != nil || len(p.printed) != 0 || strings.Contains(p.note, "no host knows what its first submitter printed") == kept {
			t.Fatalf("kept %v: note %q, printed %v, %v", kept, p.note, p.printed, err)
		}
	}
	// The coordinator goes on the first host given.
	if p, err = planResume("j1", []string{"c", "b"}, []holdsMsg{c, b}); err != nil || p.resume.Coordinator != 2 {
		t.Fatalf("coordinator h%d, %v", p.resume.Coordinator, err)
	}

	for _, tc := range []struct {
		ids   []string
		holds []holdsMsg
		want  string
		is    error
	}{
		{[]string{"c"}, []holdsMsg{c}, "job j1 cannot resume on the hosts given: rank 0's checkpoint of epoch 2 is on no host given (add a host that holds it)", nil},
		{[]string{"b", "d"}, []holdsMsg{b, {NotHere: "host d keeps nothing of job j1"}}, "host d keeps nothing of job j1 (leave it out of --hosts)", nil},
		{[]string{"d"}, []holdsMsg{{NotHere: "host d keeps nothing of job j1"}}, "no job j1 on the hosts given", ErrNoJob},
		{[]string{"b", "e"}, []holdsMsg{b, b}, "host e has no part in job j1", nil},
		{[]string{"b", "c"}, []holdsMsg{b, {Spec: spec, Module: "other"}}, "hold different modules", nil},
		{[]string{"b"}, []holdsMsg{{Spec: spec, Module: "m", Held: held(1, 0, 1, 2, 3)}}, "has no committed epoch on the hosts given", nil},
	} {
		_, err := planResume("j1", tc.ids, tc.holds)
		if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") || (tc.is != nil && !errors.Is(err, tc.is)) {
			t.Errorf("hosts %v: %v, want %q", tc.ids, err, tc.want)
		}
	}
}
