package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// benchCOW measures checkpoints of guests of several memory sizes (the
// checkpoint benchmarks' guest, host/testdata/mem: filled with a mix of
// random and structured data, then rounds that each rewrite 1 % of it and
// ask for a checkpoint) under librahost run -v, with the copy-on-write
// capture and with the stop-and-copy one (LIBRAHOST_COW=off): the pause
// of the first (full) checkpoint and of the 1 % incremental ones, the
// time from a checkpoint's pause to durable, and the guest's run time;
// and with copy-on-write a periodic run, where a guest that rewrites 1 %
// per period never asks (a guest that asks back to back waits for the
// oldest round under way to commit once two are).
func benchCOW(lh, dir, root string, runs int, sizes []int, rounds int) error {
	wasm, err := buildGuest(dir, "mem", filepath.Join(root, "host/testdata/mem"), false)
	if err != nil {
		return err
	}
	fmt.Printf("memory sizes: host/testdata/mem, then %d rounds that each rewrite 1 %% of it (a run of pages) and take a checkpoint; "+
		"the periodic run sleeps %v after each round instead, `--checkpoint-every %v` takes the checkpoints, and it is ended once %d after the full one are durable "+
		"(its run time is until then)\n\n", rounds, cowPeriod, cowPeriod, rounds)
	fmt.Println("Pauses and time to durable (from the pause's start) over all runs: p50 / max; run time: median of the whole run (fill included); peak resident memory (VmHWM), the most of any run.")
	fmt.Println()
	fmt.Println("| guest memory | capture | full: pause | full: durable (GB/s) | 1 %: pause p50 / max | 1 %: durable p50 | run time | ratio | peak RSS |")
	fmt.Println("|---|---|---|---|---|---|---|---|---|")
	for _, mib := range sizes {
		args := []string{fmt.Sprint(mib), "10", fmt.Sprint(rounds), "ckpt"}
		// The periodic run: the guest rewrites 1 % each period and the
		// host's timer takes the checkpoints (a tick while a round is
		// under way is skipped: the guest never waits for one), until
		// rounds of them after the full one are durable.
		periodic := []string{fmt.Sprint(mib), "10", "1000000000", "tick", "run", fmt.Sprint(cowPeriod.Milliseconds())}
		variants := []struct {
			name     string
			env      []string
			periodic bool
		}{{"stop-and-copy", []string{"LIBRAHOST_COW=off"}, false}, {"copy-on-write", nil, false}, {"copy-on-write", nil, true}}
		type result struct {
			wall                            []time.Duration
			peak                            uint64
			fullPause, fullDur, pause, durs []time.Duration
			kinds                           map[string]int
		}
		res := make([]result, len(variants))
		for i := range res {
			res[i].kinds = map[string]int{}
		}
		for round := 0; round < runs; round++ {
			for i, v := range variants {
				var wall time.Duration
				var peak uint64
				var cks []ckptLine
				if v.periodic {
					wall, peak, cks, err = runPeriodic(lh, dir, wasm, periodic, []string{"--checkpoint-every", cowPeriod.String()}, v.env, rounds)
				} else {
					wall, peak, cks, err = runCheckpoints(lh, dir, wasm, args, v.env)
				}
				if err != nil {
					return err
				}
				r := &res[i]
				r.wall = append(r.wall, wall)
				r.peak = max(r.peak, peak)
				for _, c := range cks {
					r.kinds[c.kind]++
					if c.epoch == 1 {
						r.fullPause = append(r.fullPause, c.pause)
						r.fullDur = append(r.fullDur, c.pause+c.write)
						continue
					}
					r.pause = append(r.pause, c.pause)
					r.durs = append(r.durs, c.pause+c.write)
				}
			}
		}
		base := median(res[0].wall)
		for i, v := range variants {
			r := res[i]
			kind := v.name
			if r.kinds[v.name] == 0 { // the verbose lines say which ran
				kind += fmt.Sprintf(" (ran: %v)", r.kinds)
			}
			ratio := fmt.Sprintf("%.2f×", median(r.wall).Seconds()/base.Seconds())
			if v.periodic {
				kind += fmt.Sprintf(", every %v", cowPeriod)
				ratio = "—" // the run sleeps, and is ended
			}
			gbs := 0.0
			if d := median(r.fullDur); d > 0 {
				gbs = float64(mib<<20) / d.Seconds() / 1e9
			}
			fmt.Printf("| %s | %s | %s | %s (%.2f) | %s / %s | %s | %s | %s | %d MiB |\n", mem(mib), kind,
				ms2(median(r.fullPause)), ms(median(r.fullDur)), gbs,
				ms2(median(r.pause)), ms2(maxDur(r.pause)), ms(median(r.durs)),
				secs(median(r.wall)), ratio, r.peak>>20)
		}
	}
	return nil
}

// cowPeriod is the periodic run's period: the guest rewrites 1 % of its
// memory in each.
const cowPeriod = 250 * time.Millisecond

// ms2 prints a duration in milliseconds with two decimals.
func ms2(d time.Duration) string { return fmt.Sprintf("%.2f ms", d.Seconds()*1000) }

func maxDur(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	return slices.Max(ds)
}

// ckptLine is one checkpoint's -v line.
type ckptLine struct {
	epoch        int
	pause, write time.Duration
	kind         string
}

var ckptRE = regexp.MustCompile(`checkpoint (\d+) durable: .* pause ([0-9.]+[µmn]?s) \(([a-z-]+)[^)]*\), write ([0-9.]+[µmn]?s)`)

// parseCkptLine reads a checkpoint's -v line.
func parseCkptLine(l string) (ckptLine, bool) {
	m := ckptRE.FindStringSubmatch(l)
	if m == nil {
		return ckptLine{}, false
	}
	e, _ := strconv.Atoi(m[1])
	p, err1 := time.ParseDuration(m[2])
	w, err2 := time.ParseDuration(m[4])
	return ckptLine{epoch: e, pause: p, write: w, kind: m[3]}, err1 == nil && err2 == nil
}

// runCheckpoints runs a module under librahost run -v with a state
// directory (the guest asks for its checkpoints) and returns the wall
// time, the peak resident memory and the checkpoints' lines.
func runCheckpoints(lh, dir, wasm string, args, env []string) (time.Duration, uint64, []ckptLine, error) {
	wall, _, peak, log, err := runStatePeak(lh, dir, wasm, args, nil, env, true)
	if err != nil {
		return 0, 0, nil, err
	}
	var cks []ckptLine
	for _, l := range strings.Split(log, "\n") {
		if c, ok := parseCkptLine(l); ok {
			cks = append(cks, c)
		}
	}
	if len(cks) == 0 {
		return 0, 0, nil, fmt.Errorf("%s: no checkpoint lines in\n%s", filepath.Base(wasm), log)
	}
	return wall, peak, cks, nil
}

// runPeriodic runs a module that does not end by itself under librahost
// run -v with a state directory and flags (a --checkpoint-every), and
// kills it once want checkpoints after the first are durable; it returns
// the time until then, the peak resident memory and the checkpoints'
// lines.
func runPeriodic(lh, dir, wasm string, args, flags, env []string, want int) (time.Duration, uint64, []ckptLine, error) {
	cmd, st := runCmd(lh, dir, wasm, args, flags, env, true)
	defer os.RemoveAll(st)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return 0, 0, nil, err
	}
	t0 := time.Now()
	if err := cmd.Start(); err != nil {
		return 0, 0, nil, err
	}
	var cks []ckptLine
	var log strings.Builder
	sc := bufio.NewScanner(stderr)
	later := 0
	for later < want && sc.Scan() {
		log.WriteString(sc.Text() + "\n")
		if c, ok := parseCkptLine(sc.Text()); ok {
			cks = append(cks, c)
			if c.epoch > 1 {
				later++
			}
		}
	}
	wall := time.Since(t0)
	cmd.Process.Kill()
	go io.Copy(io.Discard, stderr)
	cmd.Wait()
	if later < want {
		return 0, 0, nil, fmt.Errorf("%s: ended after %d checkpoints:\n%s", filepath.Base(wasm), len(cks), log.String())
	}
	return wall, peakRSS(cmd.ProcessState), cks, nil
}
