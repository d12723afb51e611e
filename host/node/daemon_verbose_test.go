package node

import (
	"errors"
	"path/filepath"
	"regexp"
	"testing"
	"time"
)

// A host started with Verbose (host -v) logs, for each checkpoint of its
// ranks, each one's pause and the part of it that was its own capture.
func TestVerbosePauseByRank(t *testing.T) {
	var addrs []string
	var logs []*syncBuffer
	for _, n := range []string{"a", "b"} {
		log := &syncBuffer{}
		d, _, _ := listenAt(t, Config{Name: n, DataDir: filepath.Join(t.TempDir(), n), Log: log,
			FailureTimeout: 10 * time.Second, Verbose: true})
		addrs, logs = append(addrs, d.Addr().String()), append(logs, log)
	}
	cfg, _, errOut := submitCfg(addrs, 4, testGuest(t, "../../samples/ring"), "-laps", "2000000000")
	cfg.CheckpointEvery, cfg.Replicas = 100*time.Millisecond, 1
	s := submitAsync(cfg)
	id := waitLog(t, logs[0], regexp.MustCompile(`job ([0-9a-f]+) from`), s.done)[1]
	// Host a runs ranks 0 and 2, host b ranks 1 and 3. A rank's line comes
	// before its host says DONE, so before the epoch is committed there.
	for h, ranks := range [][]string{{"0", "2"}, {"1", "3"}} {
		waitLog(t, logs[h], regexp.MustCompile(`epoch 2 committed`), s.done)
		for _, r := range ranks {
			m := regexp.MustCompile(`checkpoint [12]: rank ` + r + ` pause (\S+), own capture (\S+)`).FindStringSubmatch(logs[h].String())
			if m == nil {
				t.Fatalf("host %d: no pause line for rank %s in\n%s", h, r, logs[h])
			}
			pause, err1 := time.ParseDuration(m[1])
			capture, err2 := time.ParseDuration(m[2])
			if err1 != nil || err2 != nil || capture <= 0 || pause < capture {
				t.Fatalf("host %d: %q: want a pause no shorter than a positive capture", h, m[0])
			}
		}
	}
	if _, errs, err := CancelJob(t.Context(), cfg.Client, addrs, id); err != nil || errors.Join(errs...) != nil {
		t.Fatalf("CancelJob: %v %v\nstderr: %s", err, errs, errOut)
	}
	s.wait(t)
}
