package job

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/librahost/librahost/host"
)

func TestCheckRun(t *testing.T) {
	rec := &runRecord{RunID: "aaaa", runSpec: runSpec{Args: []string{"app", "-x"}, Env: []string{"K=V"}, N: 1}}
	same := *rec
	if err := rec.checkRun(3, same.binding()); err != nil {
		t.Fatalf("own checkpoint refused: %v", err)
	}
	if err := rec.checkRun(3, nil); err != nil {
		t.Fatalf("a checkpoint made before runs were bound refused: %v", err)
	}
	if si, err := host.ParseState([]byte(`{"version":1,"kind":"go","clock_ns":5,"wasi":null}`)); err != nil || si.Run != nil {
		t.Fatalf("host state of an earlier release: %v, run %q", err, si.Run)
	}
	for _, tc := range []struct {
		name string
		edit func(r *runRecord)
		want string
	}{
		{"args", func(r *runRecord) { r.Args = []string{"app", "-y"} }, `other arguments ["app" "-y"], this run's ["app" "-x"]`},
		{"env", func(r *runRecord) { r.Env = nil }, "other environment"},
		{"mounts", func(r *runRecord) { r.Mounts = []mountJSON{{Host: "/a", Guest: "/b"}} }, "other mounts"},
		{"seed", func(r *runRecord) { r.Deterministic, r.Seed = true, 7 }, "other seed"},
		{"workers", func(r *runRecord) { r.N = 4 }, "other 4 workers, this run's 1"},
		{"id only", func(r *runRecord) {}, "the same arguments"},
	} {
		other := *rec
		other.RunID = "bbbb"
		tc.edit(&other)
		err := rec.checkRun(9, other.binding())
		if !errors.Is(err, ErrForeignRun) || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "checkpoint 9 belongs to run bbbb") {
			t.Errorf("%s: %v", tc.name, err)
		}
	}
	damaged := *rec
	damaged.Args = []string{"app", "-z"}
	if err := damaged.checkRun(4, rec.binding()); !errors.Is(err, ErrDamagedState) || !strings.Contains(err.Error(), "run record run.json does not match its checkpoints (arguments") {
		t.Errorf("a run record changed behind librahost's back: %v", err)
	}
	if err := rec.checkRun(2, []byte(`{"id":`)); !errors.Is(err, ErrForeignRun) || !strings.Contains(err.Error(), "damaged") {
		t.Errorf("damaged binding: %v", err)
	}
}

func TestHostRun(t *testing.T) {
	rec := &runRecord{RunID: "cafe", runSpec: runSpec{Args: []string{"a"}}}
	hs := []byte(`{"version":1,"kind":"go","run":` + string(rec.binding()) + `}`)
	if err := rec.checkRun(1, hostRun(hs)); err != nil || hostRun(hs) == nil {
		t.Fatalf("run binding of a host state: %v", err)
	}
	rc, _ := json.Marshal(&rankCheckpoint{Version: 1, Run: rec.binding()})
	if hostRun(rc) == nil {
		t.Fatal("no run binding found in a rank checkpoint")
	}
	if d := describeRun(hostRun(hs)); d != `cafe, arguments ["a"]` {
		t.Fatalf("described as %q", d)
	}
	if hostRun([]byte("{bad")) != nil || hostRun([]byte(`{"version":1}`)) != nil {
		t.Fatal("a run binding found where there is none")
	}
}
