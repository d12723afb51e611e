package main

import (
	"fmt"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"time"
)

// benchCOW measures checkpoints of guests of several memory sizes (the
// checkpoint benchmarks' guest, host/testdata/mem: filled with a mix of
// random and structured data, then rounds that each rewrite 1 % of it and
// ask for a checkpoint) under librahost run -v, with the copy-on-write
// capture and with the stop-and-copy one (LIBRAHOST_COW=off): the pause
// of the first (full) checkpoint and of the 1 % incremental ones, the
// time from a checkpoint's pause to durable, and the guest's run time.
func benchCOW(lh, dir, root string, runs int, sizes []int, rounds int) error {
	wasm, err := buildGuest(dir, "mem", filepath.Join(root, "host/testdata/mem"), false)
	if err != nil {
		return err
	}
	fmt.Printf("memory sizes: host/testdata/mem, then %d rounds that each rewrite 1 %% of it (a run of pages) and take a checkpoint\n\n", rounds)
	fmt.Println("Pauses and time to durable (from the pause's start) over all runs: p50 / max; run time: median of the whole run (fill included); peak resident memory (VmHWM), the most of any run.")
	fmt.Println()
	fmt.Println("| guest memory | capture | full: pause | full: durable (GB/s) | 1 %: pause p50 / max | 1 %: durable p50 | run time | ratio | peak RSS |")
	fmt.Println("|---|---|---|---|---|---|---|---|---|")
	for _, mib := range sizes {
		args := []string{fmt.Sprint(mib), "10", fmt.Sprint(rounds), "ckpt"}
		variants := []struct {
			name string
			env  []string
		}{{"stop-and-copy", []string{"LIBRAHOST_COW=off"}}, {"copy-on-write", nil}}
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
				wall, peak, cks, err := runCheckpoints(lh, dir, wasm, args, v.env)
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
			gbs := 0.0
			if d := median(r.fullDur); d > 0 {
				gbs = float64(mib<<20) / d.Seconds() / 1e9
			}
			fmt.Printf("| %s | %s | %s | %s (%.2f) | %s / %s | %s | %s | %.2f× | %d MiB |\n", mem(mib), kind,
				ms2(median(r.fullPause)), ms(median(r.fullDur)), gbs,
				ms2(median(r.pause)), ms2(maxDur(r.pause)), ms(median(r.durs)),
				secs(median(r.wall)), median(r.wall).Seconds()/base.Seconds(), r.peak>>20)
		}
	}
	return nil
}

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

// runCheckpoints runs a module under librahost run -v with a state
// directory (the guest asks for its checkpoints) and returns the wall
// time, the peak resident memory and the checkpoints' lines.
func runCheckpoints(lh, dir, wasm string, args, env []string) (time.Duration, uint64, []ckptLine, error) {
	wall, _, peak, log, err := runStatePeak(lh, dir, wasm, args, nil, env, true)
	if err != nil {
		return 0, 0, nil, err
	}
	var cks []ckptLine
	for _, m := range ckptRE.FindAllStringSubmatch(log, -1) {
		e, _ := strconv.Atoi(m[1])
		p, err1 := time.ParseDuration(m[2])
		w, err2 := time.ParseDuration(m[4])
		if err1 == nil && err2 == nil {
			cks = append(cks, ckptLine{epoch: e, pause: p, write: w, kind: m[3]})
		}
	}
	if len(cks) == 0 {
		return 0, 0, nil, fmt.Errorf("%s: no checkpoint lines in\n%s", filepath.Base(wasm), log)
	}
	return wall, peak, cks, nil
}
