package job

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"testing"
	"time"
)

var jobPauseLine = regexp.MustCompile(`pause ([0-9.]+[µmn]?s) \([a-z-]+ ([0-9.]+[µmn]?s)\)`)

// BenchmarkJobCheckpoint runs samples/heat with 4 workers, without
// checkpoints and with one every 500 ms, in alternation, and reports the
// run times, their ratio and the pause of the job's checkpoints: for each
// checkpoint the longest any worker stood still (from stopping at its
// capture point, through waiting for the others, to the end of its own
// capture), and the longest capture (hash and copy) alone.
//
//	go test -run XXX -bench JobCheckpoint -benchtime 3x ./host/job/
func BenchmarkJobCheckpoint(b *testing.B) {
	module := testGuest(b, "../../samples/heat")
	path := filepath.Join(guests.Dir, "heat.wasm")
	if err := os.WriteFile(path, module, 0o644); err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	cfg := Config{ModulePath: path, N: 4, Args: []string{"heat"}, Stdout: io.Discard, Stderr: io.Discard,
		CacheDir: filepath.Join(guests.Dir, "wazero")}
	run := func(c Config) time.Duration {
		t0 := time.Now()
		if code, err := Run(ctx, c); code != 0 || err != nil {
			b.Fatalf("exit %d: %v", code, err)
		}
		return time.Since(t0)
	}
	run(cfg) // compiles the module into the cache
	var plain, ckpted, pauses, captures []time.Duration
	b.ResetTimer()
	for i := range b.N {
		plain = append(plain, run(cfg))
		var log bytes.Buffer
		c := cfg
		c.StateDir = filepath.Join(guests.Dir, fmt.Sprintf("heat%d.libra", i))
		c.CheckpointEvery, c.Verbose, c.Log = 500*time.Millisecond, true, &log
		ckpted = append(ckpted, run(c))
		for _, m := range jobPauseLine.FindAllStringSubmatch(log.String(), -1) {
			p, _ := time.ParseDuration(m[1])
			cp, _ := time.ParseDuration(m[2])
			pauses, captures = append(pauses, p), append(captures, cp)
		}
	}
	b.StopTimer()
	if len(pauses) == 0 {
		b.Fatal("no checkpoint was taken")
	}
	slices.Sort(plain)
	slices.Sort(ckpted)
	mid := func(ds []time.Duration) time.Duration { return ds[len(ds)/2] }
	b.ReportMetric(mid(plain).Seconds(), "plain-s")
	b.ReportMetric(mid(ckpted).Seconds(), "ckpt-s")
	b.ReportMetric(float64(mid(ckpted))/float64(mid(plain)), "ratio")
	b.ReportMetric(float64(len(pauses))/float64(b.N), "ckpts/run")
	slices.Sort(pauses)
	slices.Sort(captures)
	// at is the p-quantile of sorted ds, in milliseconds.
	at := func(ds []time.Duration, p float64) float64 {
		return float64(ds[min(len(ds)-1, int(p*float64(len(ds))))]) / float64(time.Millisecond)
	}
	b.ReportMetric(at(pauses, 0.5), "pause-p50-ms")
	b.ReportMetric(at(pauses, 0.9), "pause-p90-ms")
	b.ReportMetric(at(pauses, 1), "pause-max-ms")
	b.ReportMetric(at(captures, 0.5), "capture-p50-ms")
}
