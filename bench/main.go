// Command bench measures librahost end to end on this machine and prints
// a Markdown table for bench/RESULTS.md: the run time of each guest kind
// against its plain build, measured in the same run, and the cost of
// periodic checkpoints.
//
//	go run ./bench [-runs 3] [-quick] [-only guests,jobs,cow,randwrite,lazy,dashboard,multihost] [-sizes 256,1024,3840] [-rounds 40] [-ckpts 10]
//	               [-windows 6] [-window 10s] [-rate 1000] [-workers 4,8,16] [-pause-steps 600] [-heat-steps 2500]
//	               [-migrate-mib 256] [-migrations 10] [-migrate-rates 1,10,40]
//
// multihost stands for mhpause, mhheat and mhcommit (multihost.go);
// mhside is heat with and without checkpoints at once (multihost_side.go);
// migrate is live migration (migrate.go).
package main

import (
	"cmp"
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/librahost/librahost/host/build"
	"github.com/librahost/librahost/host/lazy"
)

func main() {
	lazy.Main() // the filler of a lazy restore, should one run in-process
	runs := flag.Int("runs", 3, "runs of each measurement (the median is reported)")
	quick := flag.Bool("quick", false, "smaller workloads")
	only := flag.String("only", "", "run these sections, separated by commas: guests, jobs, cow (checkpoints by memory size), randwrite, lazy (restores by memory size), dashboard, mhpause, mhheat, mhcommit (multihost: the three), mhside, migrate")
	sizes := flag.String("sizes", "256,1024,3840", "randwrite, cow and lazy: the guest's memory sizes, in MiB (3840 stands for 4 GiB: a Go guest cannot allocate all of it)")
	rounds := flag.Int("rounds", 40, "randwrite: rounds of 2^20 writes (10 with -quick)")
	ckpts := flag.Int("ckpts", 10, "cow: checkpoints of each run, after the full one")
	windows := flag.Int("windows", 6, "dashboard: windows with load, and as many without, in alternation (0: only the serving cost, no job)")
	window := flag.Duration("window", 10*time.Second, "dashboard: length of a window")
	rate := flag.Int("rate", 1000, "dashboard: requests per second of the load")
	workers := flag.String("workers", "4,8,16", "mhpause: worker counts, separated by commas")
	var mh mhConfig
	flag.StringVar(&mh.baseLH, "base-librahost", "", "mhpause and mhheat: also run each configuration with this librahost `binary` (one built from an earlier commit), in alternation with the tree's")
	flag.IntVar(&mh.pauseSteps, "pause-steps", 600, "mhpause: heat's time steps (grid "+heatGrid+")")
	flag.IntVar(&mh.heatSteps, "heat-steps", 2500, "mhheat: heat's time steps (grid "+heatGrid+")")
	flag.IntVar(&mh.heatN, "heat-n", 6, "mhheat: workers")
	flag.IntVar(&mh.pairs, "heat-pairs", 3, "mhside: pairs of runs of each checkpoint interval")
	flag.IntVar(&mh.commitN, "commit-n", 8, "mhcommit: workers")
	flag.IntVar(&mh.commitMiB, "commit-mib", 64, "mhcommit: each worker's memory in MiB")
	flag.DurationVar(&mh.commitFor, "commit-for", 40*time.Second, "mhcommit: how long each run rewrites its memory")
	flag.DurationVar(&mh.failTimeout, "failure-timeout", 30*time.Second, "multihost: submit's --failure-timeout for checkpointed jobs (a loaded machine can stall a host for longer than the default 2s)")
	var mig migrateConfig
	flag.IntVar(&mig.mib, "migrate-mib", 256, "migrate: each worker's memory in MiB")
	flag.IntVar(&mig.migrations, "migrations", 10, "migrate: moves of each job")
	migRates := flag.String("migrate-rates", "1,10,40", "migrate: percent of its memory each worker rewrites a second, separated by commas")
	load := flag.String("load", "", "(internal) run the dashboard's load generator against this `URL`")
	loadFor := flag.Duration("load-for", 0, "(internal) how long the load generator runs")
	flag.Parse()
	if *load != "" {
		if err := runLoad(*load, *rate, *loadFor); err != nil {
			fmt.Fprintln(os.Stderr, "bench load:", err)
			os.Exit(1)
		}
		return
	}
	dash := dashboardConfig{windows: *windows, window: *window, rate: *rate}
	for _, f := range strings.Split(*workers, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 || n > 64 {
			fmt.Fprintf(os.Stderr, "bench: -workers %q: give worker counts, 1 to 64, separated by commas\n", *workers)
			os.Exit(2)
		}
		mh.workers = append(mh.workers, n)
	}
	for _, f := range strings.Split(*migRates, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 || n > 100 {
			fmt.Fprintf(os.Stderr, "bench: -migrate-rates %q: give percents, 1 to 100, separated by commas\n", *migRates)
			os.Exit(2)
		}
		mig.rates = append(mig.rates, n)
	}
	if err := run(*runs, *quick, *only, *sizes, *rounds, *ckpts, dash, mh, mig); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

type guest struct {
	name  string
	src   string // built by librahost build
	plain string // the same program built without capture
	args  []string
}

func run(runs int, quick bool, only, sizeList string, rounds, ckpts int, dash dashboardConfig, mh mhConfig, mig migrateConfig) error {
	sections := map[string]bool{}
	for _, o := range strings.Split(only, ",") {
		if o = strings.TrimSpace(o); o == "" {
			continue
		}
		if !slices.Contains([]string{"guests", "jobs", "cow", "randwrite", "lazy", "dashboard", "multihost", "mhpause", "mhheat", "mhcommit", "mhside", "migrate"}, o) {
			return fmt.Errorf("-only %q: say guests, jobs, cow, randwrite, lazy, dashboard, multihost, mhpause, mhheat, mhcommit, mhside or migrate, separated by commas", only)
		}
		if o == "multihost" {
			sections["mhpause"], sections["mhheat"], sections["mhcommit"] = true, true, true
		}
		sections[o] = true
	}
	want := func(s string) bool { return len(sections) == 0 || sections[s] }
	if dash.windows < 0 || dash.window < time.Second || dash.rate < 1 {
		return fmt.Errorf("-windows %d -window %s -rate %d: give 0 windows (the serving cost only) or more, of at least 1s, and a positive rate", dash.windows, dash.window, dash.rate)
	}
	if mh.pauseSteps < 1 || mh.heatSteps < 1 || mh.heatN < 1 || mh.commitN < 1 || mh.commitMiB < 1 || mh.commitFor < time.Second || mh.failTimeout <= 0 {
		return fmt.Errorf("-pause-steps, -heat-steps, -heat-n, -commit-n and -commit-mib and -failure-timeout must be positive and -commit-for at least 1s")
	}
	if mh.baseLH != "" {
		if abs, err := filepath.Abs(mh.baseLH); err == nil {
			mh.baseLH = abs
		}
		if fi, err := os.Stat(mh.baseLH); err != nil || fi.IsDir() {
			return fmt.Errorf("-base-librahost %q: not a file; build one with `go build -o FILE ./cmd/librahost` in a worktree of the commit to compare with", mh.baseLH)
		}
	}
	if ckpts <= 0 {
		return fmt.Errorf("-ckpts %d: give a positive number of checkpoints", ckpts)
	}
	if rounds <= 0 {
		return fmt.Errorf("-rounds %d: give a positive number of rounds", rounds)
	}
	var sizes []int
	for _, f := range strings.Split(sizeList, ",") {
		mib, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || mib <= 0 || mib > 3840 {
			return fmt.Errorf("-sizes %q: give sizes in MiB, 1 to 3840, separated by commas", sizeList)
		}
		sizes = append(sizes, mib)
	}
	root, err := repoRoot()
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "librahost-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	lh := filepath.Join(dir, "librahost")
	if out, err := exec.Command("go", "build", "-o", lh, filepath.Join(root, "cmd/librahost")).CombinedOutput(); err != nil {
		return fmt.Errorf("build librahost: %v\n%s", err, out)
	}
	fmt.Printf("machine: %s, %d cores, %s; median of %d runs\n\n", cpuModel(), runtime.NumCPU(), runtime.Version(), runs)
	if want("guests") {
		if err := benchGuests(lh, dir, root, runs, quick); err != nil {
			return err
		}
	}
	if want("jobs") {
		if err := benchJobs(lh, dir, root, runs, quick); err != nil {
			return err
		}
	}
	if want("cow") {
		if err := benchCOW(lh, dir, root, runs, sizes, ckpts); err != nil {
			return err
		}
		fmt.Println()
	}
	if want("randwrite") {
		if quick {
			rounds = min(rounds, 10)
		}
		if err := benchRandWrite(lh, dir, root, runs, sizes, rounds); err != nil {
			return err
		}
	}
	if want("lazy") {
		if err := benchLazy(lh, dir, root, runs, sizes); err != nil {
			return err
		}
		fmt.Println()
	}
	if want("mhpause") || want("mhheat") || want("mhcommit") || want("mhside") {
		if quick {
			mh.pauseSteps, mh.heatSteps, mh.commitFor = min(mh.pauseSteps, 200), min(mh.heatSteps, 400), min(mh.commitFor, 10*time.Second)
		}
		if err := benchMultiHost(lh, dir, root, runs, want, mh); err != nil {
			return err
		}
	}
	if want("migrate") {
		if mig.mib < 1 || mig.migrations < 1 {
			return fmt.Errorf("-migrate-mib and -migrations must be positive")
		}
		if quick {
			mig.mib, mig.migrations = min(mig.mib, 32), min(mig.migrations, 2)
		}
		if err := benchMigrate(lh, dir, root, runs, mig); err != nil {
			return err
		}
	}
	if want("dashboard") {
		if quick {
			dash.windows, dash.window = min(dash.windows, 3), min(dash.window, 5*time.Second)
		}
		return benchDashboard(dir, root, dash)
	}
	return nil
}

// benchGuests compares each guest kind's run time with its plain build,
// with and without checkpoints.
func benchGuests(lh, dir, root string, runs int, quick bool) error {
	sieveN, nbodyN := "400000000", "30000000"
	if quick {
		sieveN, nbodyN = "20000000", "2000000"
	}
	mk := func(name string, src string, plain bool) (string, error) {
		return buildGuest(dir, name, filepath.Join(root, src), plain)
	}
	var gs []guest
	for _, g := range []struct {
		name, src string
		args      []string
	}{
		{"Go native (samples/sieve)", "samples/sieve", []string{"-n", sieveN}},
		{"C asyncify (samples/nbody)", "samples/nbody/nbody.c", []string{nbodyN}},
	} {
		base := strings.Fields(strings.ToLower(g.name))[0] + fmt.Sprint(len(gs))
		capture, err := mk(base, g.src, false)
		if err != nil {
			return err
		}
		plain, err := mk(base+"-plain", g.src, true)
		if err != nil {
			return err
		}
		gs = append(gs, guest{g.name, capture, plain, g.args})
	}
	// Go through asyncify: the plain Go build, instrumented.
	goAsync, err := buildGuest(dir, "go-asyncify", gs[0].plain, false)
	if err != nil {
		return err
	}
	gs = append(gs, guest{"Go through asyncify (samples/sieve)", goAsync, gs[0].plain, gs[0].args})

	fmt.Println("| guest | plain build | librahost build | ratio | with --checkpoint-every 1s | ratio |")
	fmt.Println("|---|---|---|---|---|---|")
	for _, g := range gs {
		// The three variants run in alternation, so that a change in the
		// machine's load affects them alike.
		variants := []struct {
			wasm string
			ckpt bool
		}{{g.plain, false}, {g.src, false}, {g.src, true}}
		times := make([][]time.Duration, len(variants))
		for round := -1; round < runs; round++ { // round -1 warms the compilation cache
			for i, v := range variants {
				d, err := timeRun(lh, dir, v.wasm, g.args, v.ckpt)
				if err != nil {
					return err
				}
				if round >= 0 {
					times[i] = append(times[i], d)
				}
			}
		}
		plain, capt, ck := median(times[0]), median(times[1]), median(times[2])
		fmt.Printf("| %s | %s | %s | %.3f× | %s | %.3f× |\n", g.name, secs(plain), secs(capt), capt.Seconds()/plain.Seconds(), secs(ck), ck.Seconds()/plain.Seconds())
	}
	return nil
}

// buildGuest builds src (an absolute path) with librahost build into
// dir/name.wasm, sharing one build cache in dir.
func buildGuest(dir, name, src string, plain bool) (string, error) {
	return build.Build(context.Background(), []string{src}, build.Config{
		Out:      filepath.Join(dir, name+".wasm"),
		CacheDir: filepath.Join(dir, "cache"),
		Plain:    plain,
	})
}

// timeRun runs a module once under librahost and returns the wall time.
func timeRun(lh, dir string, wasm string, args []string, ckpt bool) (time.Duration, error) {
	argv := []string{"run"}
	if ckpt {
		argv = append(argv, "--state", filepath.Join(dir, fmt.Sprintf("state-%d", time.Now().UnixNano())), "--checkpoint-every", "1s")
	}
	argv = append(argv, wasm, "--")
	argv = append(argv, args...)
	cmd := exec.Command(lh, argv...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	t0 := time.Now()
	if _, err := cmd.Output(); err != nil {
		return 0, fmt.Errorf("%s: %v\n%s", filepath.Base(wasm), err, stderr.String())
	}
	return time.Since(t0), nil
}

// median is 0 for no values (a table cell with nothing measured).
func median[T cmp.Ordered](xs []T) T {
	var zero T
	if len(xs) == 0 {
		return zero
	}
	slices.Sort(xs)
	return xs[len(xs)/2]
}

// peakRSS is an ended process's peak resident memory (its VmHWM), 0 if
// not known.
func peakRSS(ps *os.ProcessState) uint64 {
	if ru, ok := ps.SysUsage().(*syscall.Rusage); ok {
		return uint64(ru.Maxrss) << 10
	}
	return 0
}

// runCmd is librahost run of wasm with flags and args, in env besides
// this process's; with state, under -v with a state directory of its own,
// st, for the caller to remove.
func runCmd(lh, dir, wasm string, args, flags, env []string, state bool) (cmd *exec.Cmd, st string) {
	argv := []string{"run"}
	if state {
		st = filepath.Join(dir, fmt.Sprintf("state-%d", time.Now().UnixNano()))
		argv = append(argv, "-v", "--state", st)
	}
	cmd = exec.Command(lh, append(append(append(argv, flags...), wasm, "--"), args...)...)
	cmd.Env = append(os.Environ(), env...)
	return cmd, st
}

func secs(d time.Duration) string { return fmt.Sprintf("%.2f s", d.Seconds()) }

func repoRoot() (string, error) {
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}").Output()
	if err != nil {
		return "", fmt.Errorf("run bench from inside the repository: %v", err)
	}
	return strings.TrimSpace(string(out)), nil
}

func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return runtime.GOARCH
	}
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return runtime.GOARCH
}
