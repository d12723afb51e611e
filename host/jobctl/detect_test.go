package jobctl

import (
	"testing"
	"testing/synctest"
	"time"

	"github.com/librahost/librahost/ckpt"
)

// TestDetectLoss runs the protocol cores of a job of 3 hosts over
// Endpoints (on pipes, in fake time): an epoch commits; an idle job
// stays whole; a participant host that dies is declared lost by the
// coordinator within the failure timeout of its last heartbeat, and the
// job goes on as a new incarnation without it; when the coordinator's
// host dies, the participant stops the job as soon.
func TestDetectLoss(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const ft, tick = 2 * time.Second, 50 * time.Millisecond
		_, eps := newPipeJob(t, 3, ft)
		defer closeAll(eps)
		acts := make(chan hostAction, 4096)
		hosts := make([]*coreHost, 3)
		for h := range hosts {
			hosts[h] = newCoreHost(eps[h], 3, ckpt.HostID(h), ft, acts)
			go hosts[h].loop(tick)
		}
		hosts[0].do(func() { hosts[0].coord.Trigger() })
		for range 3 {
			waitAct(t, acts, -1, ckpt.ActRelease, time.Minute)
		}

		time.Sleep(20 * ft) // idle: heartbeats keep every host alive
		drain(t, acts, ckpt.ActRecover, ckpt.ActStop)

		eps[2].Close() // h2 dies
		died := time.Now()
		a := waitAct(t, acts, 0, ckpt.ActRecover, time.Minute)
		if a.act.Host != 2 {
			t.Fatalf("declared h%d lost, not h2", a.act.Host)
		}
		if d := a.at.Sub(died); d <= ft-ft/4 || d > ft+tick {
			t.Fatalf("h2 declared lost %v after it died, want within (%v, %v]", d, ft-ft/4, ft+tick)
		}
		// h0, which holds its replica, restarts h2's rank; h1 rolls back;
		// the job runs again as incarnation 1, and a round makes the
		// replicas again.
		if a := waitAct(t, acts, 0, ckpt.ActRestore, time.Minute); a.act.Rank != 2 {
			t.Fatalf("h0 restores rank %d, not 2", a.act.Rank)
		}
		waitAct(t, acts, 1, ckpt.ActResume, time.Minute)
		waitAct(t, acts, 1, ckpt.ActRelease, time.Minute)

		eps[0].Close() // the coordinator's host dies
		died = time.Now()
		a = waitAct(t, acts, 1, ckpt.ActStop, time.Minute)
		if d := a.at.Sub(died); d <= ft-ft/4 || d > ft+tick {
			t.Fatalf("h1 stopped %v after the coordinator's host died, want within (%v, %v]", d, ft-ft/4, ft+tick)
		}
	})
}

func closeAll(eps []*Endpoint) {
	for _, e := range eps {
		e.Close()
	}
}

// drain fails if acts holds an action of one of kinds.
func drain(t *testing.T, acts chan hostAction, kinds ...ckpt.ActionKind) {
	t.Helper()
	for {
		select {
		case a := <-acts:
			for _, k := range kinds {
				if a.act.Kind == k {
					t.Fatalf("h%d: %v", a.host, a.act)
				}
			}
		default:
			return
		}
	}
}
