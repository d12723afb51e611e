package node

import (
	"context"
	"testing"

	"github.com/librahost/librahost/transport"
)

// TestOverview: a host's overview is itself, then the other hosts of its
// jobs with their status; one that stopped is there as down.
func TestOverview(t *testing.T) {
	ring := testGuest(t, "../../samples/ring")
	ds, stop, _ := startDaemons(t, transport.Faults{}, "a", "b")
	addrs := []string{ds[0].Addr().String(), ds[1].Addr().String()}
	ctx := context.Background()
	if o := ds[0].Overview(ctx); len(o) != 1 || o[0].Status == nil || o[0].Status.Host != "a" {
		t.Fatalf("overview before any job: %+v", o)
	}
	cfg, _, errOut := submitCfg(addrs, 2, ring, "-laps", "3")
	if code, err := Submit(ctx, cfg); err != nil || code != 0 {
		t.Fatalf("exit %d, %v\n%s", code, err, errOut)
	}
	o := ds[0].Overview(ctx)
	if len(o) != 2 || o[1].Addr != addrs[1] || o[1].Status == nil || o[1].Status.Host != "b" ||
		len(o[1].Status.Jobs) != 1 || o[1].Status.Jobs[0].State != stateEnded {
		t.Fatalf("overview after a job on a and b: %+v", o)
	}
	stop[1]()
	o = ds[0].Overview(ctx)
	if len(o) != 2 || o[1].Status != nil || o[1].State != "down" || o[1].Error == "" {
		t.Fatalf("overview with b stopped: %+v", o)
	}
}
