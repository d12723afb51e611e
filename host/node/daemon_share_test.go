package node

import (
	"errors"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/librahost/librahost/transport"
)

// waitLog waits until log holds a match of re, or fails once done is
// closed without one.
func waitLog(t *testing.T, log *syncBuffer, re *regexp.Regexp, done <-chan struct{}) []string {
	t.Helper()
	for {
		if m := re.FindStringSubmatch(log.String()); m != nil {
			return m
		}
		select {
		case <-done:
			if m := re.FindStringSubmatch(log.String()); m != nil {
				return m
			}
			t.Fatalf("the log never matched %q:\n%s", re, log)
		case <-time.After(10 * time.Millisecond): // polls the log
		}
	}
}

// A ring over three hosts, checkpointed with one replica per rank (with
// and without loss, duplication and reordering on its links): epochs
// commit while it runs (a ring that never ends, cancelled once they
// did, so that no machine is fast enough to end it first), CheckpointJob
// takes a checkpoint at once on the coordinator's host, a ring that ends
// sees every hop, and a job that takes no checkpoints is refused by name.
func TestSubmitCheckpointed(t *testing.T) {
	ring := testGuest(t, "../../samples/ring")
	for _, tc := range []struct {
		f    transport.Faults
		laps string
		want string
	}{
		{transport.Faults{}, "3000", "ring of 5: 3000 laps, token 30000, every hop checked\n"},
		{transport.Faults{Drop: 0.2, Duplicate: 0.1, Reorder: 0.1, Seed: 5}, "60", "ring of 5: 60 laps, token 600, every hop checked\n"},
	} {
		addrs, _, logs := startHosts(t, tc.f, "a", "b", "c")
		cfg, _, errOut := submitCfg(addrs, 5, ring, "-laps", "2000000000")
		cfg.CheckpointEvery, cfg.Replicas = 100*time.Millisecond, 1
		s := submitAsync(cfg)
		id := waitLog(t, logs[0], regexp.MustCompile(`job ([0-9a-f]+) from`), s.done)[1]
		waitLog(t, logs[1], regexp.MustCompile(`epoch 1 committed`), s.done)
		if !tc.f.Enabled() {
			e, err := CheckpointJob(t.Context(), cfg.Client, addrs, id)
			if err != nil || e < 2 {
				t.Fatalf("CheckpointJob: epoch %d, %v", e, err)
			}
		}
		if _, errs, err := CancelJob(t.Context(), cfg.Client, addrs, id); err != nil || errors.Join(errs...) != nil {
			t.Fatalf("CancelJob: %v %v\nstderr: %s", err, errs, errOut)
		}
		s.wait(t)

		cfg, out, errOut := submitCfg(addrs, 5, ring, "-laps", tc.laps)
		cfg.CheckpointEvery, cfg.Replicas = 100*time.Millisecond, 1
		if code, err := submitAsync(cfg).wait(t); code != 0 || err != nil {
			t.Fatalf("faults %+v: exit %d, %v\nstderr: %s", tc.f, code, err, errOut)
		}
		if out.String() != tc.want {
			t.Fatalf("faults %+v: stdout %q, want %q", tc.f, out, tc.want)
		}
	}
	addrs, _, logs := startHosts(t, transport.Faults{}, "a", "b")
	cfg, _, _ := submitCfg(addrs, 2, ring, "-laps", "100000")
	s := submitAsync(cfg)
	id := waitLog(t, logs[0], regexp.MustCompile(`job ([0-9a-f]+) from`), s.done)[1]
	if _, err := CheckpointJob(t.Context(), cfg.Client, addrs, id); err == nil || !strings.Contains(err.Error(), "takes no checkpoints: submit it with --checkpoint-every") {
		t.Fatalf("CheckpointJob of a job without checkpoints: %v", err)
	}
}
