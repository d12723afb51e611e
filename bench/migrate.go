package main

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"time"
)

// migrate: live migration of a rank between two host processes (issue
// 10's figures), in one run of this command: a job of two workers of
// bench/testdata/dirtymem (each holds -migrate-mib of memory and rewrites
// 1 %, 10 % or 40 % of it a second), checkpointed every second with one
// replica; its rank 0 moves from host a to b and back -migrations times,
// with pre-copy and, on a second pair of hosts started with
// LIBRAHOST_PRECOPY=off, by stop-and-copy. Each move's downtime (from the
// rank's stop at its source to its run on the target), total time and
// bytes sent are the summary line `librahost migrate` prints.

// migrateConfig is what the migrate section measures.
type migrateConfig struct {
	mib        int // each worker's memory
	migrations int // moves of each job
	rates      []int
}

var migrateSummaryRE = regexp.MustCompile(`moved to \S+: downtime (\S+), total (\S+), (\d+) pre-copy rounds, sent (\S+ \S+) of the guest's (\S+ \S+)`)

// migrateSample is one move.
type migrateSample struct {
	downtime, total time.Duration
	rounds          int
	sent, size      string
	failed          string // the command's line if the move failed
	last            int    // chunks of the last state sent straight to the target (-1: none said)
	split           string // the target's split of the downtime (its -v line), if it said one
}

// migrateLastRE is the source's line (-v) for a last state sent straight
// to the target's worker: how many chunks were written since the
// pre-copy round the target holds.
var migrateLastRE = regexp.MustCompile(`its last state went straight to \S+: (\d+) chunks written since round`)

// migrateSplitRE is the target's line (-v) once the rank runs there:
// when its last state arrived and when the coordinator's ROUTE did.
var migrateSplitRE = regexp.MustCompile(`rank 0 runs here: \S+ after it stopped at its source \((?:its last state here after (\S+), )?its route after (\S+)\)`)

func benchMigrate(lh, dir, root string, runs int, cfg migrateConfig) error {
	mem, err := buildGuest(dir, "dirtymem", filepath.Join(root, "bench/testdata/dirtymem"), false)
	if err != nil {
		return err
	}
	fmt.Printf("\nlive migration: bench/testdata/dirtymem, 2 workers of %d MiB, rank 0 moved between 2 host processes %d times a run, %d runs, --checkpoint-every 1s --replicas 1 (load average at start: %s)\n\n",
		cfg.mib, cfg.migrations, runs, loadAvg())
	pre, err := startCluster(lh, dir, "a", "b")
	if err != nil {
		return err
	}
	defer pre.stop()
	os.Setenv("LIBRAHOST_PRECOPY", "off") // the hosts started now inherit it
	sc, err := startCluster(lh, dir, "a", "b")
	os.Unsetenv("LIBRAHOST_PRECOPY")
	if err != nil {
		return err
	}
	defer sc.stop()
	fmt.Println("| writes a second | moves by | moved | failed | downtime p50 | p99 | max | total p50 | pre-copy rounds p50 | sent p50 (of the guest's) |")
	fmt.Println("|---|---|---|---|---|---|---|---|---|---|")
	for _, rate := range cfg.rates {
		for _, mode := range []struct {
			name string
			c    *cluster
		}{{"pre-copy", pre}, {"stop-and-copy", sc}} {
			var ss []migrateSample
			for range runs {
				got, err := migrateRun(lh, mode.c, mem, cfg, rate)
				if err != nil {
					return fmt.Errorf("%s, %d %%: %v", mode.name, rate, err)
				}
				ss = append(ss, got...)
			}
			var down, total, rounds []time.Duration
			var moved []migrateSample
			failed := ""
			for _, s := range ss {
				if s.failed != "" {
					failed = s.failed
					continue
				}
				moved = append(moved, s)
				down, total, rounds = append(down, s.downtime), append(total, s.total), append(rounds, time.Duration(s.rounds))
			}
			sent, size := "", ""
			if len(moved) > 0 {
				sent, size = moved[len(moved)/2].sent, moved[len(moved)/2].size
			}
			fmt.Printf("| %d %% | %s | %d | %d | %s | %s | %s | %s | %d | %s (%s) |\n", rate, mode.name, len(moved), len(ss)-len(moved),
				ms2(pct(down, 0.5)), ms2(pct(down, 0.99)), ms2(pct(down, 1)), ms(pct(total, 0.5)), int(pct(rounds, 0.5)), sent, size)
			if failed != "" {
				fmt.Printf("\n(%d %%, %s: a failed move said: %s)\n\n", rate, mode.name, failed)
			}
			if mode.name == "pre-copy" && len(moved) > 0 {
				// What each move's downtime went with: the chunks written
				// since the last round the target held, and when the last
				// state and the ROUTE reached the target.
				var each []string
				for _, s := range moved {
					each = append(each, fmt.Sprintf("%.1f ms (%d chunks; %s)", s.downtime.Seconds()*1000, s.last, s.split))
				}
				fmt.Printf("\n(%d %%, pre-copy: each move's downtime, the chunks of its last state, and when its last state and its route were at the target after its stop: %s)\n\n", rate, strings.Join(each, ", "))
			}
		}
	}
	fmt.Printf("\ngoal: pre-copy downtime p99 ≤ 50 ms at 1 %% a second on loopback. Load average at end: %s\n", loadAvg())
	return nil
}

// migrateRun runs one job of dirtymem on c and moves its rank 0 between
// the hosts cfg.migrations times, once both workers said ready; the job
// is cancelled after.
func migrateRun(lh string, c *cluster, mem string, cfg migrateConfig, rate int) ([]migrateSample, error) {
	offs := make([]int64, len(c.logs))
	for i, l := range c.logs {
		if fi, err := os.Stat(l); err == nil {
			offs[i] = fi.Size()
		}
	}
	cmd := exec.Command(lh, "submit", "--cluster", c.dir, "--hosts", c.hosts, "-n", "2", "--checkpoint-every", "1s",
		"--replicas", "1", "--failure-timeout", "30s", mem, "--", fmt.Sprint(cfg.mib), fmt.Sprint(rate*10), "1000", "3600")
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	sc := bufio.NewScanner(out)
	for ready := 0; ready < 2; {
		if !sc.Scan() {
			return nil, fmt.Errorf("the job ended before it was ready: %s", stderr.String())
		}
		if strings.TrimSpace(sc.Text()) == "ready" {
			ready++
		}
	}
	go func() {
		for sc.Scan() {
		}
	}()
	// Its ID, and a committed epoch (the rank's replica, which the target
	// holds before the first move, as it would on a cluster).
	var id string
	for deadline := time.Now().Add(5 * time.Minute); id == "" || !strings.Contains(logSince(c.logs[0], offs[0]), "epoch 1 committed"); time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("no committed epoch in 5 minutes")
		}
		if m := regexp.MustCompile(`job ([0-9a-f]+) from`).FindStringSubmatch(logSince(c.logs[0], offs[0])); m != nil {
			id = m[1]
		}
	}
	var ss []migrateSample
	at := "a"
	for range cfg.migrations {
		to := map[string]string{"a": "b", "b": "a"}[at]
		src := map[string]int{"a": 0, "b": 1}[at]
		var logOff [2]int64
		for i := range logOff {
			if fi, err := os.Stat(c.logs[i]); err == nil {
				logOff[i] = fi.Size()
			}
		}
		b, err := exec.Command(lh, "migrate", "--job", id, "--rank", "0", "--to", to, "--cluster", c.dir, "--hosts", c.hosts).CombinedOutput()
		m := migrateSummaryRE.FindStringSubmatch(string(b))
		if err != nil && strings.Contains(string(b), "goes on at "+at) {
			// Failed (the target did not keep up): counted, and the rank
			// is still at its source.
			ss = append(ss, migrateSample{failed: strings.TrimSpace(string(b))})
			continue
		}
		if err != nil || m == nil {
			return nil, fmt.Errorf("migrate to %s: %v: %s", to, err, b)
		}
		at = to
		s := migrateSample{sent: m[4], size: m[5], last: -1}
		if lm := migrateLastRE.FindStringSubmatch(logSince(c.logs[src], logOff[src])); lm != nil {
			fmt.Sscan(lm[1], &s.last)
		}
		if sm := migrateSplitRE.FindStringSubmatch(logSince(c.logs[1-src], logOff[1-src])); sm != nil {
			s.split = "route " + sm[2]
			if sm[1] != "" {
				s.split = "state " + sm[1] + ", " + s.split
			}
		}
		s.downtime, _ = time.ParseDuration(m[1])
		s.total, _ = time.ParseDuration(m[2])
		fmt.Sscan(m[3], &s.rounds)
		ss = append(ss, s)
	}
	exec.Command(lh, "cancel", id, "--cluster", c.dir, "--hosts", c.hosts).Run()
	return ss, nil
}

// logSince is what log holds past off.
func logSince(log string, off int64) string {
	b, _ := os.ReadFile(log)
	return string(b[min(off, int64(len(b))):])
}
