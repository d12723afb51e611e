package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sync"
	"syscall"
	"time"

	"github.com/librahost/librahost/host/metrics"
	"github.com/librahost/librahost/host/node"
	"github.com/librahost/librahost/host/web"
	"github.com/librahost/librahost/transport"
)

type dashboardConfig struct {
	windows int
	window  time.Duration
	rate    int
}

// dashboardPaths are what the load generator asks for, in turn.
var dashboardPaths = []string{"/", "/api/status", "/metrics"}

// benchDashboard measures what serving the dashboard and /metrics at
// 1,000 requests/s costs a checkpointing job in the same process: a host
// daemon with its HTTP server (host/web over the daemon's Overview and
// metrics, as `librahost host --http` has them) and a job checkpointing
// every second run in this process; a load generator in another process
// asks for /, /api/status and /metrics in turn at the given rate during
// every other window. The checkpoints that begin and end inside a window
// count for it; the report compares their pause and durable times with
// load against without, windows in alternation. Before the job starts, it
// reports the CPU time a request costs this process, and what the same
// load costs a bare net/http server here (the floor); -windows 0 stops
// there.
func benchDashboard(dir, root string, cfg dashboardConfig) error {
	windows, window, rate := cfg.windows, cfg.window, cfg.rate
	cluster := filepath.Join(dir, "cluster")
	if err := transport.InitCluster(cluster, []string{"a"}); err != nil {
		return err
	}
	d, err := node.Listen(node.Config{Name: "a", Listen: "127.0.0.1:0", DataDir: filepath.Join(dir, "host-a"), ClusterDir: cluster})
	if err != nil {
		return err
	}
	hs, err := web.Listen(web.Config{Listen: "127.0.0.1:0", Metrics: d.Metrics().Handler(), Status: d.Overview})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go d.Serve(ctx)
	go hs.Serve(ctx)
	url := "http://" + hs.Addr().String()

	self, err := os.Executable()
	if err != nil {
		return err
	}
	// The CPU time this process spends serving, before the job starts,
	// less what it spends idle.
	cpu0 := processCPU()
	time.Sleep(window)
	idle := processCPU() - cpu0
	serve := func(name, url string) error {
		cpu0 := processCPU()
		r, err := loadFor(self, url, rate, window)
		if err != nil {
			return err
		}
		cpu := processCPU() - cpu0 - time.Duration(float64(idle)*r.Seconds/window.Seconds())
		fmt.Printf("%s: %.0f requests/s answered, %d late; this process's CPU time %.1f µs a request, %.1f %% of a core at %d requests/s (idle: %.1f %%)\n",
			name, float64(r.OK)/r.Seconds, r.Late, cpu.Seconds()*1e6/float64(r.OK), cpu.Seconds()/r.Seconds*100, rate, idle.Seconds()/window.Seconds()*100)
		return nil
	}
	fmt.Println()
	if err := serve("serving alone", url); err != nil {
		return err
	}
	// The floor: what the same load costs a bare net/http server of this
	// process, whose one handler writes 700 bytes (the size of /).
	bare, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	body := bytes.Repeat([]byte("x"), 700)
	go http.Serve(bare, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "700")
		w.Write(body)
	}))
	err = serve("a bare net/http server, for comparison", "http://"+bare.Addr().String())
	bare.Close()
	if err != nil {
		return err
	}
	if windows == 0 {
		return nil
	}
	wasm, err := buildGuest(dir, "randwrite", filepath.Join(root, "bench/testdata/randwrite"), false)
	if err != nil {
		return err
	}

	ckpts := &checkpointLog{job: d.Metrics().Jobs().Start(1)}
	var jobErr error
	ended, stop := make(chan struct{}), make(chan struct{})
	go func() {
		jobErr = runCheckpointingJob(wasm, dir, ckpts, stop)
		close(ended)
	}()
	defer func() {
		close(stop)
		<-ended
	}()
	// The first checkpoint is a full one: wait for two.
	if err := ckpts.waitFor(2, ended); err != nil {
		return err
	}

	fmt.Printf("\ndashboard load: %d windows of %s in alternation, without and with %d requests/s over %v\n\n",
		2*windows, window, rate, dashboardPaths)
	var quiet, loaded []span
	var loads []loadReport
	for w := range 2 * windows {
		start := time.Now()
		if w%2 == 0 {
			select {
			case <-time.After(window):
			case <-ended:
			}
			quiet = append(quiet, span{start, time.Now()})
		} else {
			r, err := loadFor(self, url, rate, window)
			if err != nil {
				return err
			}
			loads = append(loads, r)
			loaded = append(loaded, span{start, time.Now()})
		}
		select {
		case <-ended:
			return fmt.Errorf("the job ended: %v", jobErr)
		default:
		}
	}
	q, l := ckpts.within(quiet), ckpts.within(loaded)
	if len(q) == 0 || len(l) == 0 {
		return fmt.Errorf("too few checkpoints: %d without load, %d with", len(q), len(l))
	}
	var lr loadReport
	for _, r := range loads {
		lr.OK += r.OK
		lr.Errors += r.Errors
		lr.Late += r.Late
		lr.Seconds += r.Seconds
		lr.P50 = max(lr.P50, r.P50)
		lr.P99 = max(lr.P99, r.P99)
	}
	fmt.Printf("load: %.0f requests/s answered (%d), %d errors, %d not sent in time; latency p50 %s, p99 %s (worst window)\n\n",
		float64(lr.OK)/lr.Seconds, lr.OK, lr.Errors, lr.Late, lr.P50, lr.P99)
	fmt.Println("| checkpoints | n | pause p50 | pause mean | durable p50 | durable mean | MiB hashed, written (mean) |")
	fmt.Println("|---|---|---|---|---|---|---|")
	row := func(name string, cs []ckptTimes) {
		p, du := field(cs, func(c ckptTimes) time.Duration { return c.pause }), field(cs, func(c ckptTimes) time.Duration { return c.durable })
		var h, w float64
		for _, c := range cs {
			h, w = h+c.hashed/float64(len(cs)), w+c.written/float64(len(cs))
		}
		fmt.Printf("| %s | %d | %s | %s | %s | %s | %.1f, %.1f |\n", name, len(cs), msf(median(p)), msf(mean(p)), msf(median(du)), msf(mean(du)), h, w)
	}
	row("without load", q)
	row(fmt.Sprintf("with %d req/s", rate), l)
	pq, pl := field(q, func(c ckptTimes) time.Duration { return c.pause }), field(l, func(c ckptTimes) time.Duration { return c.pause })
	dq, dl := field(q, func(c ckptTimes) time.Duration { return c.durable }), field(l, func(c ckptTimes) time.Duration { return c.durable })
	fmt.Printf("| ratio | | %.3f× | %.3f× | %.3f× | %.3f× | |\n",
		median(pl).Seconds()/median(pq).Seconds(), mean(pl).Seconds()/mean(pq).Seconds(),
		median(dl).Seconds()/median(dq).Seconds(), mean(dl).Seconds()/mean(dq).Seconds())
	return nil
}

type span struct{ start, end time.Time }

// ckptTimes is one checkpoint as the job's -v line reports it.
type ckptTimes struct {
	at              time.Time // the line was read: durable
	pause, durable  time.Duration
	hashed, written float64 // MiB
}

// checkpointLog reads the job's log lines, keeps each durable
// checkpoint's times and reports them to the host's metrics, as the job
// driver will.
type checkpointLog struct {
	job *metrics.Job

	mu    sync.Mutex
	cs    []ckptTimes
	added chan struct{}
}

var durableRE = regexp.MustCompile(`checkpoint \d+ durable: .*\(([0-9.]+ [KMG]?i?B) hashed\), ([0-9.]+ [KMG]?i?B) written, pause ([0-9.]+[µmn]?s)(?: \([^)]*\))?, write ([0-9.]+[µmn]?s)`)

// mib reads a size as host.FormatBytes writes it.
func mib(s string) float64 {
	var v float64
	var unit string
	fmt.Sscanf(s, "%g %s", &v, &unit)
	switch unit {
	case "GiB":
		return v * 1024
	case "MiB":
		return v
	case "KiB":
		return v / 1024
	}
	return v / (1 << 20)
}

func (l *checkpointLog) Write(p []byte) (int, error) {
	now := time.Now()
	for _, m := range durableRE.FindAllSubmatch(p, -1) {
		pause, err1 := time.ParseDuration(string(m[3]))
		write, err2 := time.ParseDuration(string(m[4]))
		if err1 != nil || err2 != nil {
			continue
		}
		c := ckptTimes{at: now, pause: pause, durable: pause + write, hashed: mib(string(m[1])), written: mib(string(m[2]))}
		l.job.CheckpointCommitted(metrics.CheckpointStats{Pause: c.pause, Durable: c.durable, Commit: c.durable})
		l.mu.Lock()
		l.cs = append(l.cs, c)
		if l.added != nil {
			close(l.added)
			l.added = nil
		}
		l.mu.Unlock()
	}
	return len(p), nil
}

// waitFor waits until n checkpoints are durable.
func (l *checkpointLog) waitFor(n int, ended <-chan struct{}) error {
	for {
		l.mu.Lock()
		if len(l.cs) >= n {
			l.mu.Unlock()
			return nil
		}
		added := make(chan struct{})
		l.added = added
		l.mu.Unlock()
		select {
		case <-added:
		case <-ended:
			return fmt.Errorf("the job ended before %d checkpoints", n)
		case <-time.After(2 * time.Minute):
			return fmt.Errorf("no checkpoint line read in 2 min (has the -v line changed? see durableRE)")
		}
	}
}

// within lists the checkpoints that began and ended inside one of ws,
// past its first 300 ms (the load generator starting or stopping).
func (l *checkpointLog) within(ws []span) []ckptTimes {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []ckptTimes
	for _, c := range l.cs {
		began := c.at.Add(-c.durable)
		for _, w := range ws {
			if began.After(w.start.Add(300*time.Millisecond)) && c.at.Before(w.end) {
				out = append(out, c)
			}
		}
	}
	return out
}

func field(cs []ckptTimes, f func(ckptTimes) time.Duration) []time.Duration {
	out := make([]time.Duration, len(cs))
	for i, c := range cs {
		out[i] = f(c)
	}
	return out
}

func mean(ds []time.Duration) time.Duration {
	var s time.Duration
	for _, d := range ds {
		s += d
	}
	return s / time.Duration(len(ds))
}

func msf(d time.Duration) string { return fmt.Sprintf("%.1f ms", d.Seconds()*1000) }

// loadReport is what the load generator prints when done, as JSON.
type loadReport struct {
	OK, Errors, Late int
	Seconds          float64
	P50, P99         time.Duration
}

// loadFor runs the load generator (this program, -load) for d and
// returns its report.
func loadFor(self, url string, rate int, d time.Duration) (loadReport, error) {
	var r loadReport
	load := exec.Command(self, "-load", url, "-rate", fmt.Sprint(rate), "-load-for", d.String())
	load.Stderr = os.Stderr
	out, err := load.Output()
	if err == nil {
		err = json.Unmarshal(out, &r)
	}
	if err != nil {
		return r, fmt.Errorf("load generator: %v", err)
	}
	return r, nil
}

// processCPU is this process's CPU time so far (user and system).
func processCPU() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// runLoad asks for dashboardPaths in turn at rate requests/s for d, from
// 64 keep-alive connections, and prints a loadReport. Requests wait for a
// free connection up to half a second's worth; one more is counted late,
// not sent.
func runLoad(url string, rate int, d time.Duration) error {
	client := &http.Client{
		Transport: &http.Transport{MaxIdleConnsPerHost: 64}, // asks for gzip, as Prometheus and browsers do
		Timeout:   10 * time.Second,
	}
	const conns = 64
	work := make(chan string, rate/2) // half a second's requests may wait for a connection
	var mu sync.Mutex
	var r loadReport
	var lat []time.Duration
	var wg sync.WaitGroup
	for range conns {
		wg.Go(func() {
			for p := range work {
				t0 := time.Now()
				resp, err := client.Get(url + p)
				if err == nil {
					_, err = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if err == nil && resp.StatusCode != 200 {
						err = fmt.Errorf("%s: %s", p, resp.Status)
					}
				}
				el := time.Since(t0)
				mu.Lock()
				if err != nil {
					r.Errors++
				} else {
					r.OK++
					lat = append(lat, el)
				}
				mu.Unlock()
			}
		})
	}
	start := time.Now()
	sent := 0
	tick := time.NewTicker(time.Millisecond)
	for now := range tick.C {
		el := now.Sub(start)
		if el >= d {
			break
		}
		for due := int(el.Seconds() * float64(rate)); sent < due; sent++ {
			select {
			case work <- dashboardPaths[sent%len(dashboardPaths)]:
			default:
				r.Late++
			}
		}
	}
	tick.Stop()
	close(work)
	wg.Wait()
	r.Seconds = time.Since(start).Seconds()
	if len(lat) > 0 {
		slices.Sort(lat)
		r.P50, r.P99 = lat[len(lat)/2], lat[len(lat)*99/100]
	}
	return json.NewEncoder(os.Stdout).Encode(r)
}

// runCheckpointingJob runs randwrite (64 MiB, rewritten at random in
// every round) with a checkpoint every second until stop is closed.
func runCheckpointingJob(wasm, dir string, log io.Writer, stop <-chan struct{}) error {
	_, err := runSessionInProcess(wasm, []string{"randwrite", "64", "1000000"}, filepath.Join(dir, "dashboard-state"),
		filepath.Join(dir, "wazero"), time.Second, io.Discard, log, stop)
	return err
}
