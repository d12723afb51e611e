package main

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// benchJobs compares a token ring's time per hop, and pi's run time, in
// one process (`run -n`) and over three host processes on loopback
// (`host` + `submit`, QUIC with mutual TLS), in alternation.
func benchJobs(lh, dir, root string, runs int, quick bool) error {
	ring, err := buildGuest(dir, "ring", filepath.Join(root, "samples/ring"), false)
	if err != nil {
		return err
	}
	pi, err := buildGuest(dir, "pi", filepath.Join(root, "samples/pi"), false)
	if err != nil {
		return err
	}
	c, err := startCluster(lh, dir, "a", "b", "c")
	if err != nil {
		return err
	}
	defer c.stop()
	cluster, hosts := c.dir, c.hosts

	laps, darts := 2000, "40000000"
	if quick {
		laps, darts = 200, "4000000"
	}
	const n = 6
	type variant struct {
		name string
		argv func(wasm string, args ...string) []string
	}
	variants := []variant{
		{"one process (run -n 6)", func(wasm string, args ...string) []string {
			return append([]string{"run", "-n", fmt.Sprint(n), wasm, "--"}, args...)
		}},
		{"3 host processes (submit, QUIC)", func(wasm string, args ...string) []string {
			return append([]string{"submit", "--cluster", cluster, "--hosts", hosts, "-n", fmt.Sprint(n), wasm, "--"}, args...)
		}},
	}
	fmt.Printf("\njobs of %d workers; rank r on host r mod 3, so every ring hop crosses hosts\n\n", n)
	fmt.Println("| job | " + variants[0].name + " | " + variants[1].name + " | ratio |")
	fmt.Println("|---|---|---|---|")
	timeJob := func(v variant, wasm string, args ...string) (time.Duration, error) {
		t0 := time.Now()
		cmd := exec.Command(lh, v.argv(wasm, args...)...)
		var stderr strings.Builder
		cmd.Stderr = &stderr
		if _, err := cmd.Output(); err != nil {
			return 0, fmt.Errorf("%s: %v\n%s", v.name, err, stderr.String())
		}
		return time.Since(t0), nil
	}
	// Each row: the median over runs of each variant, run in alternation.
	row := func(measure func(v variant) (time.Duration, error)) ([]time.Duration, error) {
		times := make([][]time.Duration, len(variants))
		for round := -1; round < runs; round++ { // round -1 warms the caches
			for i, v := range variants {
				d, err := measure(v)
				if err != nil {
					return nil, err
				}
				if round >= 0 {
					times[i] = append(times[i], d)
				}
			}
		}
		return []time.Duration{median(times[0]), median(times[1])}, nil
	}
	// A ring's time per hop: a run of one lap is taken off, so that start-up
	// (processes, module compilation, placement) does not count.
	hops := (laps - 1) * n
	perHop, err := row(func(v variant) (time.Duration, error) {
		long, err := timeJob(v, ring, "-laps", fmt.Sprint(laps))
		if err != nil {
			return 0, err
		}
		short, err := timeJob(v, ring, "-laps", "1")
		return (long - short) / time.Duration(hops), err
	})
	if err != nil {
		return err
	}
	fmt.Printf("| ring, %d laps: time per hop | %d µs | %d µs | %.2f× |\n", laps, perHop[0].Microseconds(), perHop[1].Microseconds(), perHop[1].Seconds()/perHop[0].Seconds())
	whole, err := row(func(v variant) (time.Duration, error) { return timeJob(v, pi, "-darts", darts) })
	if err != nil {
		return err
	}
	fmt.Printf("| pi, %s darts: run time | %s | %s | %.2f× |\n", darts, secs(whole[0]), secs(whole[1]), whole[1].Seconds()/whole[0].Seconds())
	return nil
}
