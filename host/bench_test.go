package host

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tetratelabs/wazero"

	"github.com/librahost/librahost/ckpt"
	"github.com/librahost/librahost/transport"
)

// benchCache is a compilation cache on disk, as the CLI uses: an in-memory
// one forgets a module when its runtime closes.
var benchCache = sync.OnceValue(func() wazero.CompilationCache {
	c, err := wazero.NewCompilationCacheWithDir(filepath.Join(testDir, "wazero"))
	if err != nil {
		panic(err)
	}
	return c
})

func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[min(len(s)-1, int(p*float64(len(s))))]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// BenchmarkPauseLatency measures how long a Go guest takes from a
// checkpoint request to being paused, at random moments, while it computes
// (one goroutine, an allocating one, or four).
func BenchmarkPauseLatency(b *testing.B) {
	module := testGuest(b, "testdata/busy")
	for _, mode := range []string{"compute", "alloc", "goroutines"} {
		b.Run(mode, func(b *testing.B) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			paused := make(chan time.Duration, 1)
			w, err := NewWorker(ctx, Config{
				Module: module, Args: []string{"busy", mode, "3600"}, Cache: benchCache(),
				OnPause: func(c *Capture) error {
					paused <- c.Paused.Sub(c.Requested)
					return nil
				},
			})
			if err != nil {
				b.Fatal(err)
			}
			ran := make(chan struct{})
			defer func() { cancel(); <-ran; w.Close(context.Background()) }()
			go func() { defer close(ran); w.Run(ctx) }()
			time.Sleep(200 * time.Millisecond)
			rng := rand.New(rand.NewPCG(1, 2))
			var lat []time.Duration
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				time.Sleep(time.Duration(1+rng.IntN(4)) * time.Millisecond)
				w.RequestCheckpoint()
				lat = append(lat, <-paused)
			}
			b.StopTimer()
			b.ReportMetric(ms(percentile(lat, 0.5)), "p50-ms")
			b.ReportMetric(ms(percentile(lat, 0.99)), "p99-ms")
			b.ReportMetric(ms(slices.Max(lat)), "max-ms")
		})
	}
}

// BenchmarkPingPongGuests measures the round trip of a 64-byte message
// between two Go guests in one process, through an in-process endpoint:
// each hop wakes a guest waiting in Recv.
func BenchmarkPingPongGuests(b *testing.B) {
	module := testGuest(b, "testdata/pingpong")
	ctx := context.Background()
	ep, err := transport.NewEndpoint(transport.EndpointConfig{
		Host: "local", Route: func(uint32) transport.HostID { return "local" }, StableOnAck: true,
	})
	if err != nil {
		b.Fatal(err)
	}
	defer ep.Close()
	var out bytes.Buffer
	args := []string{"pingpong", fmt.Sprint(max(b.N, 100))}
	var workers [2]*Worker
	for r := range workers {
		cfg := Config{Module: module, Args: args, Rank: r, Size: 2, Endpoint: ep, Cache: benchCache()}
		if r == 0 {
			cfg.Stdout = NewOutput(&out)
		}
		if workers[r], err = NewWorker(ctx, cfg); err != nil {
			b.Fatal(err)
		}
		defer workers[r].Close(ctx)
	}
	b.ResetTimer()
	errs := make(chan error, 2)
	for _, w := range workers {
		go func() {
			code, err := w.Run(ctx)
			if err == nil && code != 0 {
				err = fmt.Errorf("exit code %d", code)
			}
			errs <- err
		}()
	}
	for range workers {
		if err := <-errs; err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	var rtts []time.Duration
	for _, f := range strings.Fields(out.String()) {
		ns, err := strconv.ParseInt(f, 10, 64)
		if err != nil {
			b.Fatal(err)
		}
		rtts = append(rtts, time.Duration(ns))
	}
	b.ReportMetric(ms(percentile(rtts, 0.5)), "rtt-p50-ms")
	b.ReportMetric(ms(percentile(rtts, 0.99)), "rtt-p99-ms")
}

// memCheckpoints runs the mem guest (mib MiB, permille changed per round),
// taking a checkpoint after every round into a store; key picks the key of
// each checkpoint, and fresh drops each one once durable so that the next
// is a full one. Each checkpoint is waited for until durable before the
// guest goes on, unless overlap: then the next is taken while it is still
// being written. It returns pause and durable times and bytes stored.
func memCheckpoints(b *testing.B, mib, permille, rounds int, key func(i int) ckpt.Key, fresh, overlap bool) (pauses, durable []time.Duration, stored []int64) {
	module := testGuest(b, "testdata/mem")
	store, err := ckpt.Open(ckpt.Config{Path: filepath.Join(b.TempDir(), "ckpt.db")})
	if err != nil {
		b.Fatal(err)
	}
	defer store.Close()
	store.Reserve((mib + 8) << 20) // as the Session does when a worker starts
	ctx := context.Background()
	i := 0
	var (
		pending sync.WaitGroup
		mu      sync.Mutex
		failed  error
	)
	w, err := NewWorker(ctx, Config{
		Module: module, Args: []string{"mem", fmt.Sprint(mib), fmt.Sprint(permille), fmt.Sprint(rounds), "ckpt"},
		Cache: benchCache(),
		OnPause: func(c *Capture) error {
			p, err := store.Capture(ckpt.Meta{Key: key(i), Epoch: uint64(i + 1), Globals: c.Globals, Host: c.Host, Dirty: c.Dirty}, c.Memory)
			if err != nil {
				return err
			}
			pauses = append(pauses, time.Since(c.Paused))
			i++
			if overlap {
				pending.Add(1)
				go func(paused time.Time) {
					defer pending.Done()
					err := p.Wait()
					mu.Lock()
					defer mu.Unlock()
					if err != nil {
						failed = err
						return
					}
					durable = append(durable, time.Since(paused))
					stored = append(stored, p.Stats().BytesStored)
				}(c.Paused)
				return nil
			}
			if err := p.Wait(); err != nil {
				return err
			}
			durable = append(durable, time.Since(c.Paused))
			stored = append(stored, p.Stats().BytesStored)
			if fresh {
				// Chunks are shared by content across keys: drop this
				// checkpoint so that the next one is written in full.
				return store.Delete(key(i - 1))
			}
			return nil
		},
	})
	if err != nil {
		b.Fatal(err)
	}
	defer w.Close(ctx)
	if code, err := w.Run(ctx); err != nil || code != 0 {
		b.Fatalf("mem guest: %d %v", code, err)
	}
	pending.Wait()
	if failed != nil {
		b.Fatal(failed)
	}
	return pauses, durable, stored
}

// BenchmarkCheckpoint256M measures the guest pause and the time until the
// checkpoint is durable for a 256 MiB Go guest: full checkpoints (each into
// a new key), and incremental ones with 1 % of the memory changed, with
// the guest's writes tracked (worker_dirty.go) and without (hashall).
func BenchmarkCheckpoint256M(b *testing.B) {
	for _, tc := range []struct {
		name    string
		key     func(i int) ckpt.Key
		hashAll bool
	}{
		{"full", func(i int) ckpt.Key { return ckpt.Key{Job: "full", Worker: uint32(i)} }, false},
		{"dirty1pct", func(int) ckpt.Key { return ckpt.Key{Job: "incr"} }, false},
		{"dirty1pct-hashall", func(int) ckpt.Key { return ckpt.Key{Job: "incr"} }, true},
		// Back to back: each taken while the one before is written.
		{"dirty1pct-overlap", func(int) ckpt.Key { return ckpt.Key{Job: "incr"} }, false},
	} {
		b.Run(tc.name, func(b *testing.B) {
			defer func(off bool) { dirtyOff = off }(dirtyOff)
			dirtyOff = tc.hashAll
			b.StopTimer()
			pauses, durable, stored := memCheckpoints(b, 256, 10, b.N+1, tc.key, tc.name == "full", strings.HasSuffix(tc.name, "-overlap"))
			if tc.name != "full" { // the first one is full
				pauses, durable, stored = pauses[1:], durable[1:], stored[1:]
			}
			var sum int64
			for _, s := range stored {
				sum += s
			}
			b.ReportMetric(ms(percentile(pauses, 0.5)), "pause-ms")
			b.ReportMetric(ms(slices.Max(pauses)), "max-pause-ms")
			b.ReportMetric(ms(percentile(durable, 0.5)), "durable-ms")
			b.ReportMetric(256*(1<<20)/percentile(durable, 0.5).Seconds()/1e6, "guest-MB/s")
			b.ReportMetric(float64(sum)/float64(len(stored))/(1<<20), "stored-MiB")
		})
	}
}

// BenchmarkRestore256M measures a restore of a 256 MiB Go guest, from the
// store to the guest's first instruction: instantiate (compiled module
// cached), read and decompress memory, set globals and host state.
func BenchmarkRestore256M(b *testing.B) {
	module := testGuest(b, "testdata/mem")
	dir := b.TempDir()
	store, err := ckpt.Open(ckpt.Config{Path: filepath.Join(dir, "ckpt.db")})
	if err != nil {
		b.Fatal(err)
	}
	defer store.Close()
	ctx := context.Background()
	key := ckpt.Key{Job: "restore"}
	args := []string{"mem", "256", "10", "1", "ckpt"}
	w, err := NewWorker(ctx, Config{
		Module: module, Args: args, Cache: benchCache(),
		OnPause: func(c *Capture) error {
			p, err := store.Capture(ckpt.Meta{Key: key, Epoch: 1, Globals: c.Globals, Host: c.Host}, c.Bytes())
			if err == nil {
				err = p.Wait()
			}
			return err
		},
	})
	if err != nil {
		b.Fatal(err)
	}
	if _, err := w.Run(ctx); err != nil {
		b.Fatal(err)
	}
	w.Close(ctx)
	m, err := store.Manifest(key, 1)
	if err != nil {
		b.Fatal(err)
	}
	var times []time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		t0 := time.Now()
		w, err := NewWorker(ctx, Config{Module: module, Args: args, Cache: benchCache()})
		if err != nil {
			b.Fatal(err)
		}
		err = w.Restore(&State{
			MemSize:    m.MemSize,
			ReadMemory: func(dst []byte) error { return store.ReadMemory(m, dst) },
			Globals:    m.Globals, Host: m.Host,
		})
		if err != nil {
			b.Fatal(err)
		}
		times = append(times, time.Since(t0))
		b.StopTimer()
		w.Close(ctx)
		b.StartTimer()
	}
	b.ReportMetric(ms(percentile(times, 0.5)), "restore-ms")
}

// BenchmarkDirtyTracking runs a 128 MiB Go guest that rewrites a share of
// its memory (per mille) before each of 20 checkpoints, with its writes
// tracked (on) and with every capture hashing all memory (off): the run
// time holds the tracking's write faults, the pause its savings.
func BenchmarkDirtyTracking(b *testing.B) {
	for _, permille := range []int{10, 100, 400} {
		for _, mode := range []string{"on", "off"} {
			b.Run(fmt.Sprintf("%dpermille/%s", permille, mode), func(b *testing.B) {
				defer func(off bool) { dirtyOff = off }(dirtyOff)
				dirtyOff = mode == "off"
				var runs []time.Duration
				var pauses []time.Duration
				for range b.N {
					t0 := time.Now()
					p, _, _ := memCheckpoints(b, 128, permille, 20, func(int) ckpt.Key { return ckpt.Key{Job: "incr"} }, false, false)
					runs = append(runs, time.Since(t0))
					pauses = append(pauses, p[1:]...)
				}
				b.ReportMetric(percentile(runs, 0.5).Seconds(), "run-s")
				b.ReportMetric(ms(percentile(pauses, 0.5)), "pause-ms")
			})
		}
	}
}
