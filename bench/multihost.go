package main

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// The checkpoints of jobs over several hosts (issue 9's figures), each
// measured in one run of this command:
//
//   - mhpause: each worker's pause per checkpoint against its own capture
//     (the worker's snapshot and the store's hash and copy), heat at
//     several worker counts, on one host (`run -n`) and on three host
//     processes (`submit`), from the -v lines of run and of the hosts; and
//     the control messages each host sent and received per epoch.
//   - mhheat: heat's run time over three hosts with a checkpoint every
//     10 s and every 1 s against none, in alternation.
//   - mhcommit: the time from the coordinator's trigger to the commit of
//     each epoch for workers that hold 64 MiB each and rewrite 1 % of it
//     per epoch (bench/testdata/dirtymem), one replica, three hosts.

// mhConfig is what the multi-host sections measure.
type mhConfig struct {
	workers    []int         // mhpause: worker counts
	baseLH     string        // mhpause, mhheat: another librahost binary, run in alternation with the tree's
	pauseSteps int           // mhpause: heat's steps
	heatSteps  int           // mhheat: heat's steps
	heatN      int           // mhheat, mhside: workers
	pairs      int           // mhside: pairs of runs per interval
	commitN    int           // mhcommit: workers
	commitMiB  int           // mhcommit: each worker's buffer
	commitFor  time.Duration // mhcommit: how long each run rewrites
	// submit's --failure-timeout for checkpointed jobs (on a loaded
	// machine a host can be silent for longer than the default 2 s and be
	// declared dead).
	failTimeout time.Duration
}

// heatGrid is heat's plate in the multi-host sections: 512 rows split
// among up to 16 workers.
const heatGrid = "512"

// cluster is three host processes on loopback, started with -v; their
// logs (stderr) are files.
type cluster struct {
	dir   string // the cluster directory
	hosts string // their addresses, for --hosts
	logs  []string
	procs []*exec.Cmd
}

// startCluster starts host processes named names under dir.
func startCluster(lh, dir string, names ...string) (*cluster, error) {
	c := &cluster{dir: filepath.Join(dir, fmt.Sprintf("cluster-%d", time.Now().UnixNano()))}
	if out, err := exec.Command(lh, "cluster", "init", c.dir, "--hosts", strings.Join(names, " ")).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("cluster init: %v\n%s", err, out)
	}
	var addrs []string
	for _, n := range names {
		log := filepath.Join(c.dir, n+".log")
		f, err := os.Create(log)
		if err != nil {
			c.stop()
			return nil, err
		}
		cmd := exec.Command(lh, "host", "-v", "--listen", "127.0.0.1:0", "--data", filepath.Join(c.dir, "data-"+n), "--cluster", c.dir, "--name", n)
		cmd.Stderr = f
		out, err := cmd.StdoutPipe()
		if err == nil {
			err = cmd.Start()
		}
		f.Close()
		if err != nil {
			c.stop()
			return nil, err
		}
		c.procs, c.logs = append(c.procs, cmd), append(c.logs, log)
		line, err := bufio.NewReader(out).ReadString('\n')
		f2 := strings.Fields(line)
		if err != nil || len(f2) < 6 {
			c.stop()
			return nil, fmt.Errorf("host %s said %q: %v", n, line, err)
		}
		addrs = append(addrs, f2[5])
	}
	c.hosts = strings.Join(addrs, ",")
	return c, nil
}

func (c *cluster) stop() {
	for _, p := range c.procs {
		p.Process.Signal(syscall.SIGTERM)
		p.Wait()
	}
}

// cpu is the host processes' CPU time (user+sys) so far.
func (c *cluster) cpu() time.Duration {
	var t time.Duration
	for _, p := range c.procs {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.Process.Pid))
		if err != nil {
			continue
		}
		s := string(b)
		f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:]) // fields from the 3rd
		if len(f) > 12 {
			u, _ := strconv.Atoi(f[11])
			k, _ := strconv.Atoi(f[12])
			t += time.Duration(u+k) * 10 * time.Millisecond // USER_HZ 100
		}
	}
	return t
}

// mhRun is one job submitted to a cluster: its wall time, the hosts' CPU
// time, and what each host logged of it.
type mhRun struct {
	wall, cpu time.Duration
	logs      []string
}

var controlRE = regexp.MustCompile(`control messages: (\d+) sent, (\d+) received, (\d+) rounds`)

// submit runs a job on the cluster and waits until each host has logged
// its end (with checkpoints: its control messages' count).
func (c *cluster) submit(lh string, flags []string, wasm string, args ...string) (mhRun, error) {
	offs := make([]int64, len(c.logs))
	for i, l := range c.logs {
		if fi, err := os.Stat(l); err == nil {
			offs[i] = fi.Size()
		}
	}
	argv := append([]string{"submit", "--cluster", c.dir, "--hosts", c.hosts}, flags...)
	argv = append(append(argv, wasm, "--"), args...)
	cmd := exec.Command(lh, argv...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	cpu0, t0 := c.cpu(), time.Now()
	if _, err := cmd.Output(); err != nil {
		return mhRun{}, fmt.Errorf("submit %s: %v\n%s", filepath.Base(wasm), err, stderr.String())
	}
	r := mhRun{wall: time.Since(t0), cpu: c.cpu() - cpu0, logs: make([]string, len(c.logs))}
	ckpt := slices.Contains(flags, "--checkpoint-every")
	for i, l := range c.logs {
		for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
			b, _ := os.ReadFile(l)
			r.logs[i] = string(b[min(offs[i], int64(len(b))):])
			if !ckpt || controlRE.MatchString(r.logs[i]) || time.Now().After(deadline) {
				break
			}
		}
	}
	return r, nil
}

// rankPauseRE is a rank's pause line (-v).
var rankPauseRE = regexp.MustCompile(`checkpoint (\d+): rank (\d+) pause (\S+), own capture (\S+)`)

// pauseSample is one rank's pause for one checkpoint.
type pauseSample struct{ pause, capture time.Duration }

func pauseLines(log string) []pauseSample {
	var ps []pauseSample
	for _, m := range rankPauseRE.FindAllStringSubmatch(log, -1) {
		p, err1 := time.ParseDuration(m[3])
		c, err2 := time.ParseDuration(m[4])
		if err1 == nil && err2 == nil {
			ps = append(ps, pauseSample{p, c})
		}
	}
	return ps
}

// pct is the p-quantile (0..1) of ds, the smallest value with at least
// p of the values at or below it.
func pct(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(float64(len(s))*p+0.999999) - 1
	return s[max(0, min(i, len(s)-1))]
}

func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	return strings.Join(strings.Fields(string(b))[:3], " ")
}

// benchMultiHost runs the multi-host sections wanted.
func benchMultiHost(lh, dir, root string, runs int, want func(string) bool, cfg mhConfig) error {
	heat, err := buildGuest(dir, "heat", filepath.Join(root, "samples/heat"), false)
	if err != nil {
		return err
	}
	c, err := startCluster(lh, dir, "a", "b", "c")
	if err != nil {
		return err
	}
	defer c.stop()
	if want("mhpause") {
		if err := benchPauses(lh, dir, c, heat, runs, cfg); err != nil {
			return err
		}
	}
	if want("mhheat") {
		if err := benchHeatOverhead(lh, dir, c, heat, runs, cfg); err != nil {
			return err
		}
	}
	if want("mhside") {
		if err := benchHeatSideBySide(lh, dir, c, heat, cfg); err != nil {
			return err
		}
	}
	if want("mhcommit") {
		mem, err := buildGuest(dir, "dirtymem", filepath.Join(root, "bench/testdata/dirtymem"), false)
		if err != nil {
			return err
		}
		if err := benchTriggerCommit(lh, c, mem, runs, cfg); err != nil {
			return err
		}
	}
	return nil
}

// mhBuild is a librahost binary a multi-host bench runs, on its hosts.
type mhBuild struct {
	name, lh string
	c        *cluster
}

// mhBuilds is the tree's build on c and, with cfg.baseLH, that binary on
// three hosts of its own; stop stops the latter's.
func mhBuilds(lh, dir string, c *cluster, cfg mhConfig) (builds []mhBuild, stop func(), err error) {
	builds, stop = []mhBuild{{"tree", lh, c}}, func() {}
	if cfg.baseLH != "" {
		bc, err := startCluster(cfg.baseLH, dir, "a", "b", "c")
		if err != nil {
			return nil, nil, fmt.Errorf("-base-librahost: %w", err)
		}
		builds, stop = append(builds, mhBuild{"base", cfg.baseLH, bc}), bc.stop
	}
	return builds, stop, nil
}

// benchPauses: each worker's pause per checkpoint against its own capture,
// heat with a checkpoint every second, on one host and on three. With
// cfg.baseLH, every configuration runs with that binary too (its own three
// hosts), in alternation with the tree's, and each gets its rows.
func benchPauses(lh, dir string, c *cluster, heat string, runs int, cfg mhConfig) error {
	builds, stop, err := mhBuilds(lh, dir, c, cfg)
	if err != nil {
		return err
	}
	defer stop()
	args := []string{"-grid", heatGrid, "-steps", fmt.Sprint(cfg.pauseSteps), "-every", "100"}
	fmt.Printf("\npause of each worker per checkpoint against its own capture: heat %s, a checkpoint every 1s, %d runs of each, in alternation (load average at start: %s)\n\n", strings.Join(args, " "), runs, loadAvg())
	if cfg.baseLH != "" {
		fmt.Printf("builds: tree (this tree's librahost) and base (%s)\n\n", cfg.baseLH)
	}
	fmt.Println("excess = pause − own capture, per rank and checkpoint; goal: excess ≤ 1 ms, flat in workers and hosts")
	fmt.Println()
	fmt.Println("| build | workers | hosts | samples | pause p50 / p99 | own capture p50 / p99 | excess p50 / p99 / max | excess ≤ 1 ms | control messages per host and epoch (max over hosts) |")
	fmt.Println("|---|---|---|---|---|---|---|---|---|")
	type key struct {
		b        string
		n, hosts int
	}
	samples := map[key][]pauseSample{}
	control := map[key][]float64{}
	for round := -1; round < runs; round++ { // round -1 warms the caches
		for _, n := range cfg.workers {
			for _, b := range builds {
				flags := []string{"-n", fmt.Sprint(n), "--checkpoint-every", "1s"}
				_, _, log, err := runState(b.lh, dir, heat, args, flags, nil, true)
				if err != nil {
					return err
				}
				r, err := b.c.submit(b.lh, append(flags, "--failure-timeout", cfg.failTimeout.String()), heat, args...)
				if err != nil {
					return err
				}
				if round < 0 {
					continue
				}
				samples[key{b.name, n, 1}] = append(samples[key{b.name, n, 1}], pauseLines(log)...)
				for _, l := range r.logs {
					samples[key{b.name, n, 3}] = append(samples[key{b.name, n, 3}], pauseLines(l)...)
				}
				worst := 0.0
				for _, l := range r.logs {
					if m := controlRE.FindStringSubmatch(l); m != nil {
						s, _ := strconv.Atoi(m[1])
						v, _ := strconv.Atoi(m[2])
						e, _ := strconv.Atoi(m[3])
						if e > 0 {
							worst = max(worst, float64(s+v)/float64(e))
						}
					}
				}
				control[key{b.name, n, 3}] = append(control[key{b.name, n, 3}], worst)
			}
		}
	}
	for _, hosts := range []int{1, 3} {
		for _, n := range cfg.workers {
			for _, b := range builds {
				ss := samples[key{b.name, n, hosts}]
				var pause, capture, excess []time.Duration
				within := 0
				for _, s := range ss {
					pause, capture, excess = append(pause, s.pause), append(capture, s.capture), append(excess, s.pause-s.capture)
					if s.pause-s.capture <= time.Millisecond {
						within++
					}
				}
				ctl := "(one host: none)"
				if cs := control[key{b.name, n, hosts}]; len(cs) > 0 {
					ctl = fmt.Sprintf("%.2f", slices.Max(cs))
				}
				share := 0.0
				if len(ss) > 0 {
					share = 100 * float64(within) / float64(len(ss))
				}
				fmt.Printf("| %s | %d | %d | %d | %s / %s | %s / %s | %s / %s / %s | %.0f %% | %s |\n", b.name, n, hosts, len(ss),
					ms2(pct(pause, 0.5)), ms2(pct(pause, 0.99)), ms2(pct(capture, 0.5)), ms2(pct(capture, 0.99)),
					ms2(pct(excess, 0.5)), ms2(pct(excess, 0.99)), ms2(pct(excess, 1)), share, ctl)
			}
		}
	}
	fmt.Printf("\nload average at end: %s\n", loadAvg())
	return nil
}

// benchHeatOverhead: heat's run time over three hosts with a checkpoint
// every 10 s and every 1 s against none, in alternation. With cfg.baseLH,
// every variant runs with that binary too (its own three hosts), in
// alternation with the tree's, and each build gets its rows, its ratios
// against its own run without checkpoints.
func benchHeatOverhead(lh, dir string, c *cluster, heat string, runs int, cfg mhConfig) error {
	builds, stop, err := mhBuilds(lh, dir, c, cfg)
	if err != nil {
		return err
	}
	defer stop()
	args := []string{"-grid", heatGrid, "-steps", fmt.Sprint(cfg.heatSteps), "-every", "100"}
	fmt.Printf("\nheat %s, %d workers on 3 hosts, --replicas 1 --failure-timeout %s, %d runs of each, in alternation (load average at start: %s)\n\n", strings.Join(args, " "), cfg.heatN, cfg.failTimeout, runs, loadAvg())
	if cfg.baseLH != "" {
		fmt.Printf("builds: tree (this tree's librahost) and base (%s)\n\n", cfg.baseLH)
	}
	variants := []struct {
		name  string
		every string
	}{{"no checkpoints", ""}, {"every 10s", "10s"}, {"every 1s", "1s"}}
	type cell struct {
		walls, cpus, epochs []time.Duration // epochs: committed epochs per run, as durations for median
	}
	cells := make([][]cell, len(builds))
	idle := make([]float64, len(builds))
	for b, bu := range builds {
		cells[b] = make([]cell, len(variants))
		// A warm-up run, unmeasured: a host's first job compiles the
		// module, which would weigh on the first variant alone.
		if _, err := bu.c.submit(bu.lh, []string{"-n", fmt.Sprint(cfg.heatN)}, heat, args...); err != nil {
			return err
		}
		// What the idle hosts cost (heartbeats, the stores' scrub), per
		// second, to take off the longer runs' CPU.
		idle0, t0 := bu.c.cpu(), time.Now()
		time.Sleep(10 * time.Second)
		idle[b] = (bu.c.cpu() - idle0).Seconds() / time.Since(t0).Seconds() // CPU seconds per second
	}
	for round := 0; round < runs; round++ {
		for i, v := range variants {
			for b, bu := range builds {
				flags := []string{"-n", fmt.Sprint(cfg.heatN)}
				if v.every != "" {
					flags = append(flags, "--checkpoint-every", v.every, "--replicas", "1", "--failure-timeout", cfg.failTimeout.String())
				}
				r, err := bu.c.submit(bu.lh, flags, heat, args...)
				if err != nil {
					return err
				}
				c := &cells[b][i]
				c.walls, c.cpus = append(c.walls, r.wall), append(c.cpus, r.cpu)
				c.epochs = append(c.epochs, time.Duration(len(commitRE.FindAllString(r.logs[0], -1))))
			}
		}
	}
	fmt.Println("Run time (wall) of each run, median, and in brackets the hosts' CPU time (user+sys), median; ratios of the medians; goals: every 10s ≤ 1.02×, every 1s ≤ 1.10×.")
	fmt.Println()
	for b, bu := range builds {
		fmt.Printf("%s: the idle hosts used %.0f ms of CPU per second; ", bu.name, idle[b]*1000)
	}
	fmt.Printf("CPU per checkpoint = (hosts' CPU − no checkpoints' − idle × the longer wall time) / committed epochs, from the medians.\n\n")
	fmt.Println("| build | checkpoints | runs (wall) | median | ratio | hosts' CPU (runs) | median | ratio | committed epochs per run | CPU per checkpoint |")
	fmt.Println("|---|---|---|---|---|---|---|---|---|---|")
	for i, v := range variants {
		for b, bu := range builds {
			c, none := cells[b][i], cells[b][0]
			var each, eachCPU []string
			for k, w := range c.walls {
				each = append(each, fmt.Sprintf("%.1f", w.Seconds()))
				eachCPU = append(eachCPU, fmt.Sprintf("%.1f", c.cpus[k].Seconds()))
			}
			per := "-"
			if e := int(median(c.epochs)); e > 0 {
				extra := median(c.cpus).Seconds() - median(none.cpus).Seconds() - idle[b]*(median(c.walls)-median(none.walls)).Seconds()
				per = fmt.Sprintf("%.0f ms", extra/float64(e)*1000)
			}
			fmt.Printf("| %s | %s | %s s | %s | %.3f× | %s s | %s | %.3f× | %d | %s |\n", bu.name, v.name, strings.Join(each, ", "), secs(median(c.walls)),
				median(c.walls).Seconds()/median(none.walls).Seconds(), strings.Join(eachCPU, ", "), secs(median(c.cpus)),
				median(c.cpus).Seconds()/median(none.cpus).Seconds(), int(median(c.epochs)), per)
		}
	}
	fmt.Printf("\nload average at end: %s\n", loadAvg())
	return nil
}

// commitRE is the coordinator's line for each committed epoch.
var commitRE = regexp.MustCompile(`checkpoint (\d+): (\S+) from trigger to commit`)

// benchTriggerCommit: trigger to commit of each epoch, workers of 64 MiB
// that rewrite 1 % of it per epoch, one replica, three hosts.
func benchTriggerCommit(lh string, c *cluster, mem string, runs int, cfg mhConfig) error {
	secs := int(cfg.commitFor.Seconds())
	args := []string{fmt.Sprint(cfg.commitMiB), "10", "1000", fmt.Sprint(secs)}
	fmt.Printf("\ntrigger to commit: bench/testdata/dirtymem %s (%d MiB each, 1 %% rewritten per second, a run of pages), %d workers on 3 hosts, --checkpoint-every 1s --replicas 1 --failure-timeout %s, %d runs (load average at start: %s)\n\n",
		strings.Join(args, " "), cfg.commitMiB, cfg.commitN, cfg.failTimeout, runs, loadAvg())
	var full, incr []time.Duration
	var pauses []pauseSample
	for round := 0; round < runs; round++ {
		r, err := c.submit(lh, []string{"-n", fmt.Sprint(cfg.commitN), "--checkpoint-every", "1s", "--replicas", "1", "--failure-timeout", cfg.failTimeout.String()}, mem, args...)
		if err != nil {
			return err
		}
		var each []string
		for _, m := range commitRE.FindAllStringSubmatch(r.logs[0], -1) { // host a runs rank 0, and the coordinator
			d, err := time.ParseDuration(m[2])
			if err != nil {
				continue
			}
			each = append(each, fmt.Sprintf("%.2f", d.Seconds()))
			if m[1] == "1" {
				full = append(full, d)
			} else {
				incr = append(incr, d)
			}
		}
		for _, l := range r.logs {
			pauses = append(pauses, pauseLines(l)...)
		}
		fmt.Printf("run %d: trigger to commit of each epoch, in order (s): %s\n", round+1, strings.Join(each, " "))
	}
	fmt.Println()
	var excess []time.Duration
	for _, p := range pauses {
		excess = append(excess, p.pause-p.capture)
	}
	fmt.Println("| epochs | n | p50 | p99 | max |")
	fmt.Println("|---|---|---|---|---|")
	fmt.Printf("| first (full: %d × %d MiB) | %d | %s | %s | %s |\n", cfg.commitN, cfg.commitMiB, len(full), ms(pct(full, 0.5)), ms(pct(full, 0.99)), ms(pct(full, 1)))
	fmt.Printf("| later (1 %% dirty) | %d | %s | %s | %s |\n", len(incr), ms(pct(incr, 0.5)), ms(pct(incr, 0.99)), ms(pct(incr, 1)))
	fmt.Printf("\ngoal: later epochs' p99 ≤ 1 s. Pauses in the same runs: %d, excess over own capture p50 %s, p99 %s\n", len(excess), ms2(pct(excess, 0.5)), ms2(pct(excess, 0.99)))
	fmt.Printf("load average at end: %s\n", loadAvg())
	return nil
}
