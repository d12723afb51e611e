package main

import (
	"fmt"
	"strings"
	"sync"
)

// benchHeatSideBySide runs heat without checkpoints and with them at
// once, on two clusters of three hosts (c and one more), so that both
// runs see the same machine: on a machine shared with other work, runs
// one after the other differ by more than what checkpoints cost. The
// clusters swap roles from one pair to the next. Each pair gives the
// ratio of the checkpointed job's wall time and hosts' CPU time to the
// other's; the CPU ratio is the steadier one, as the job that ends first
// leaves the machine to the other for the rest of its run.
func benchHeatSideBySide(lh, dir string, c *cluster, heat string, cfg mhConfig) error {
	if cfg.pairs < 1 {
		return fmt.Errorf("-heat-pairs %d: want 1 or more", cfg.pairs)
	}
	c2, err := startCluster(lh, dir, "a", "b", "c")
	if err != nil {
		return err
	}
	defer c2.stop()
	args := []string{"-grid", heatGrid, "-steps", fmt.Sprint(cfg.heatSteps), "-every", "100"}
	plain := []string{"-n", fmt.Sprint(cfg.heatN)}
	fmt.Printf("\nheat %s, %d workers on 3 hosts, without checkpoints and with (--replicas 1 --failure-timeout %s) at once on two clusters, %d pairs of each interval (load average at start: %s)\n\n",
		strings.Join(args, " "), cfg.heatN, cfg.failTimeout, cfg.pairs, loadAvg())
	// Warm-up runs, unmeasured: a host's first job compiles the module.
	for _, cl := range []*cluster{c, c2} {
		if _, err := cl.submit(lh, plain, heat, args...); err != nil {
			return err
		}
	}
	fmt.Println("| checkpoints | pair | without: wall, hosts' CPU | with: wall, hosts' CPU, committed epochs | wall ratio | CPU ratio |")
	fmt.Println("|---|---|---|---|---|---|")
	for _, every := range []string{"10s", "1s"} {
		var walls, cpus []float64
		for k := range cfg.pairs {
			without, with := c, c2
			if k%2 == 1 {
				without, with = c2, c
			}
			var wg sync.WaitGroup
			var rw, rc mhRun
			var ew, ec error
			wg.Add(2)
			go func() { defer wg.Done(); rw, ew = without.submit(lh, plain, heat, args...) }()
			go func() {
				defer wg.Done()
				rc, ec = with.submit(lh, append(plain, "--checkpoint-every", every, "--replicas", "1", "--failure-timeout", cfg.failTimeout.String()), heat, args...)
			}()
			wg.Wait()
			if ew != nil {
				return ew
			}
			if ec != nil {
				return ec
			}
			wr, cr := rc.wall.Seconds()/rw.wall.Seconds(), rc.cpu.Seconds()/rw.cpu.Seconds()
			walls, cpus = append(walls, wr), append(cpus, cr)
			fmt.Printf("| every %s | %d | %s, %s | %s, %s, %d | %.3f× | %.3f× |\n", every, k+1, secs(rw.wall), secs(rw.cpu),
				secs(rc.wall), secs(rc.cpu), len(commitRE.FindAllString(rc.logs[0], -1)), wr, cr)
		}
		fmt.Printf("| every %s | median | | | %.3f× | %.3f× |\n", every, median(walls), median(cpus))
	}
	fmt.Printf("\nload average at end: %s\n", loadAvg())
	return nil
}
