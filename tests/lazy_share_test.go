package tests

import (
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// A job over three host processes (verbose), one replica of each rank,
// whose host c is lost after the second committed epoch: the hosts left
// roll back with every rank placed on them, their own and c's (from the
// replicas), restored lazily, and the job prints byte for byte what the
// failure-free `run -n 6` prints. Rank 0 is held at its end until the
// recovery is done.
func TestLazyRestoreShareRecovery(t *testing.T) {
	t.Parallel()
	job := newHeldHeat(t, "400", "20")
	cluster := filepath.Join(t.TempDir(), "cluster")
	if _, stderr, code := lh(t, "cluster", "init", cluster, "--hosts", "a b c"); code != 0 {
		t.Fatal(stderr)
	}
	hs := startHostProcsArgs(t, cluster, nil, []string{"-v"}, "a", "b", "c")
	sub := job.submit(t, cluster, hs, "--failure-timeout", lossTimeout, "--replicas", "1")
	w := watchLosses(t, hs[0], sub)
	waitHostLog(t, hs[2], regexp.MustCompile(`epoch 2 committed`), w.done)
	w.kill(t, hs[2])
	waitHostLog(t, hs[0], regexp.MustCompile(`recovered incarnation 1 in`), w.done)
	job.release.open(t)
	<-sub.done
	if sub.err != nil {
		t.Fatalf("host c killed: submit: %v\n%s", sub.err, sub.errb.Bytes())
	}
	compareOutput(t, sub.out.Bytes(), job.want)
	ended := make(chan struct{})
	close(ended)
	place := strings.Fields(waitHostLog(t, hs[0], regexp.MustCompile(`incarnation 1: ranks on \[([a-z ]+)\]`), ended)[0][1])
	byName := map[string]*hostProc{"a": hs[0], "b": hs[1]}
	for rank, name := range place {
		h := byName[name]
		if h == nil {
			t.Fatalf("rank %d placed on %s after its loss: %v", rank, name, place)
		}
		waitHostLog(t, h, regexp.MustCompile(fmt.Sprintf(`rank %d: restore: lazy`, rank)), ended)
	}
}
