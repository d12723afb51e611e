package node

import (
	"context"
	"errors"
	"io"
	"testing"
	"testing/synctest"
	"time"

	"github.com/librahost/librahost/ckpt"
	driver "github.com/librahost/librahost/host/job"
)

// A detached job with checkpoints whose submission on its coordinator's
// host went away is not cancelled before its coordinator can be found
// lost (twice the failure timeout, past the control connection's 10 s
// idle timeout when the failure timeout is longer): a job the protocol
// stopped meanwhile, to be taken over, is left so; one still running
// then is cancelled. A job that is not taken over on that host's loss is
// cancelled at once.
func TestSubmitterGone(t *testing.T) {
	for _, tc := range []struct {
		name      string
		detached  bool
		submitter string
		stopped   bool          // the job ends meanwhile (its epochs kept)
		want      time.Duration // when it is cancelled; < 0: never
	}{
		{"attached", false, "a", false, 0},
		{"detached-elsewhere", true, "b", false, 0},
		{"detached", true, "a", false, 30 * time.Second},
		{"detached-kept", true, "a", true, -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				d := &Daemon{cfg: Config{Name: "b", Log: io.Discard}}
				ctx, stop := context.WithCancelCause(context.Background())
				defer stop(nil)
				j := &job{id: "j", detached: tc.detached, submitter: tc.submitter, failureTimeout: 15 * time.Second,
					hosts: []string{"a", "b", "c"}, share: &driver.Share{Proto: ckpt.ProtoConfig{Coordinator: 0}}}
				var cancelledAt time.Duration
				start := time.Now()
				j.stop = func(err error) {
					if cancelledAt == 0 {
						cancelledAt = time.Since(start)
					}
					stop(err)
				}
				if tc.stopped {
					go func() {
						time.Sleep(15 * time.Second) // the coordinator found lost
						stop(errors.New("epochs kept"))
					}()
				}
				d.submitterGone(ctx, j)
				synctest.Wait()
				switch {
				case tc.want < 0 && cancelledAt != 0:
					t.Fatalf("cancelled after %v: want it left to be taken over", cancelledAt)
				case tc.want >= 0 && (context.Cause(ctx) == nil || cancelledAt != tc.want):
					t.Fatalf("cancelled after %v (%v): want after %v", cancelledAt, context.Cause(ctx), tc.want)
				}
			})
		})
	}
}
