package jobctl

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/librahost/librahost/ckpt"
)

// BenchmarkDetect measures the time from a host's death to its detection
// with the default failure timeout: host b is another process, SIGKILLed
// at a random moment once it hears the coordinator's host a; a's
// coordinator core, fed by its Endpoint and ticked every 50 ms (or 10),
// declares b lost. ms/op-style figures are reported as detect-p50-ms and
// detect-max-ms (ns/op includes each iteration's set-up).
//
//	go test ./host/jobctl -run '^$' -bench Detect -benchtime 20x
func BenchmarkDetect(b *testing.B) {
	for _, tick := range []time.Duration{50 * time.Millisecond, 10 * time.Millisecond} {
		b.Run("tick="+tick.String(), func(b *testing.B) { benchDetect(b, tick) })
	}
}

func benchDetect(b *testing.B, tick time.Duration) {
	names := []string{"a", "b"}
	dir := newCluster(b, names...)
	a := startQUICHost(b, dir, "a")
	const ft = ckpt.DefaultFailureTimeout
	var ds []time.Duration
	for b.Loop() {
		ea := a.open(b, names, 0, "", ft)
		acts := make(chan hostAction, 4096)
		ch := newCoreHost(ea, 2, 0, ft, acts)
		go ch.loop(tick)

		child := startChild(b, dir, 1, a.addr(), ft)
		child.waitLine(b, childReady)
		time.Sleep(time.Duration(rand.Int64N(int64(ft)))) // a random phase of b's heartbeats
		child.cmd.Process.Kill()
		died := time.Now()
		child.cmd.Wait()
		act := waitAct(b, acts, 0, ckpt.ActRecover, time.Minute)
		ds = append(ds, act.at.Sub(died))
		ea.Close()
	}
	slices.Sort(ds)
	b.ReportMetric(float64(ds[len(ds)/2])/1e6, "detect-p50-ms")
	b.ReportMetric(float64(ds[len(ds)-1])/1e6, "detect-max-ms")
	b.ReportMetric(float64(ds[0])/1e6, "detect-min-ms")
}
