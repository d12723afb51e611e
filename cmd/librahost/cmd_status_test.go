package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/librahost/librahost/host/node"
)

// status prints a job's recoveries under it, one line each: the one done
// with its time, the one under way as such.
func TestStatusRecoveries(t *testing.T) {
	now := time.Now()
	st := node.HostStatus{Host: "a", Cluster: "c1", Started: now.Add(-time.Minute), Jobs: []node.JobStatus{{
		ID: "j1", Module: "heat.wasm", N: 6, Submitter: "a", State: "running", Started: now.Add(-30 * time.Second),
		Workers: []node.WorkerStatus{{Rank: 0, State: "running"}},
		Recoveries: []node.Recovery{
			{Incarnation: 1, Epoch: 2, Lost: []string{"c"}, Moved: []int{2, 5}, Took: 812400 * time.Microsecond},
			{Incarnation: 2, Epoch: 7, Lost: []string{"b"}},
		},
	}}}
	var out bytes.Buffer
	printStatus(&out, []string{"127.0.0.1:7000"}, []node.HostStatus{st}, []error{nil}, now)
	for _, want := range []string{
		"\n    recovered incarnation 1: lost c, rolled back to epoch 2, ranks 2 5 restarted here in 812ms\n",
		"\n    recovering incarnation 2: lost b, rolled back to epoch 7\n",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("status lacks %q:\n%s", want, out.String())
		}
	}
}
