package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"
)

// benchRandWrite runs a plain Go program that rewrites its memory at
// random (bench/testdata/randwrite) at several sizes of its buffer (a Go
// program cannot allocate all of the 4 GiB a wasm32 guest may have:
// 3.75 GiB stands for 4), without checkpoints and with a checkpoint every
// second: by copy-on-write with the default --checkpoint-overhead and with
// none (off: a checkpoint at every tick no round is under way), and by
// the stop-and-copy capture (LIBRAHOST_COW=off), in alternation: the
// guest's run time with checkpoints against without.
//
// Two times are taken of each run: its rounds (from the guest's first
// line to its last) and the whole run. The whole run includes the
// guest's first touch of every page, which on a virtual machine that
// gives freed memory back to its host (virtio-balloon free page
// reporting) costs from 0.5 s to 6 s for 4 GiB, run alone or not,
// depending on how long ago the memory was freed; the rounds are what
// checkpoints slow down. The rounds' speed itself varies from one process
// to the next, alone or not, by up to a third (where the guest's memory
// lands on the host) and drifts within a run: take several runs.
func benchRandWrite(lh, dir, root string, runs int, sizes []int, rounds int) error {
	wasm, err := buildGuest(dir, "randwrite", filepath.Join(root, "bench/testdata/randwrite"), false)
	if err != nil {
		return err
	}
	variants := []struct {
		name  string
		flags []string
		env   []string
	}{
		{"alone", nil, nil},
		{"copy-on-write", []string{"--checkpoint-every", "1s"}, nil},
		{"copy-on-write, --checkpoint-overhead off", []string{"--checkpoint-every", "1s", "--checkpoint-overhead", "off"}, nil},
		{"stop-and-copy (LIBRAHOST_COW=off)", []string{"--checkpoint-every", "1s"}, []string{"LIBRAHOST_COW=off"}},
	}
	fmt.Printf("randwrite: %d rounds of 2^20 random single-byte increments after touching every page\n\n", rounds)
	fmt.Println("The rounds' time (from the guest's first line to its last) and in brackets the whole run's (wall), medians of the runs, and their ratios to the run alone; with `--checkpoint-every 1s`: the checkpoints per run and their pauses' p50 and max; peak resident memory (VmHWM), the most of any run.")
	fmt.Println()
	head, sep := "| guest memory |", "|---|"
	for _, v := range variants {
		if v.flags == nil {
			head += " " + v.name + " | peak |"
			sep += "---|---|"
			continue
		}
		head += " " + v.name + " | ratio | checkpoints, pause p50, max | peak |"
		sep += "---|---|---|---|"
	}
	fmt.Println(head)
	fmt.Println(sep)
	for _, mib := range sizes {
		args := []string{fmt.Sprint(mib), fmt.Sprint(rounds)}
		times := make([][]time.Duration, len(variants))
		walls := make([][]time.Duration, len(variants))
		pauses := make([][]time.Duration, len(variants))
		peaks := make([]uint64, len(variants))
		for round := -1; round < runs; round++ { // round -1 warms the compilation cache
			if round < 0 && mib != sizes[0] {
				continue
			}
			for i, v := range variants {
				r, err := timeRunRounds(lh, dir, wasm, args, v.flags, v.env)
				if err != nil {
					return err
				}
				if round >= 0 {
					peaks[i] = max(peaks[i], r.peak)
					times[i] = append(times[i], r.rounds)
					walls[i] = append(walls[i], r.wall)
					pauses[i] = append(pauses[i], r.pauses...)
				}
			}
		}
		alone, wAlone := median(times[0]), median(walls[0])
		row := fmt.Sprintf("| %s |", mem(mib))
		for i, v := range variants {
			t, w := median(times[i]), median(walls[i])
			row += fmt.Sprintf(" %s [%s] |", secs(t), secs(w))
			if v.flags != nil {
				row += fmt.Sprintf(" %.2f× [%.2f×] | %s |", t.Seconds()/alone.Seconds(), w.Seconds()/wAlone.Seconds(), pauseStats(pauses[i], runs))
			}
			row += fmt.Sprintf(" %d MiB |", peaks[i]>>20)
		}
		fmt.Println(row)
	}
	return nil
}

func mem(mib int) string {
	if mib >= 1024 {
		return fmt.Sprintf("%g GiB", float64(mib)/1024)
	}
	return fmt.Sprintf("%d MiB", mib)
}

// pauseStats gives the checkpoints per run and the pauses' median and
// maximum.
func pauseStats(ps []time.Duration, runs int) string {
	if len(ps) == 0 {
		return "none"
	}
	s := slices.Clone(ps)
	slices.Sort(s)
	return fmt.Sprintf("%.1f, %s, %s", float64(len(s))/float64(runs), ms(s[len(s)/2]), ms(s[len(s)-1]))
}

func ms(d time.Duration) string { return fmt.Sprintf("%.0f ms", d.Seconds()*1000) }

var pauseRE = regexp.MustCompile(`durable: .* pause ([0-9.]+[µmn]?s)`)

// roundsRun is what timeRunRounds measured of one run.
type roundsRun struct {
	wall, rounds time.Duration // the whole run; from its first line of output to its last
	peak         uint64        // peak resident memory
	pauses       []time.Duration
}

// timeRunRounds runs a module once under librahost with flags (a fresh
// state directory and -v when there are any) and returns the wall time,
// the time from its first line of output to its last, the peak resident
// memory and the checkpoints' pauses (from the -v lines).
func timeRunRounds(lh, dir, wasm string, args, flags, env []string) (roundsRun, error) {
	var lines lineClock
	wall, _, peak, log, err := runStateOut(lh, dir, wasm, args, flags, env, flags != nil, &lines)
	if err != nil {
		return roundsRun{}, err
	}
	r := roundsRun{wall: wall, rounds: lines.last.Sub(lines.first), peak: peak}
	for _, m := range pauseRE.FindAllStringSubmatch(log, -1) {
		if p, err := time.ParseDuration(m[1]); err == nil {
			r.pauses = append(r.pauses, p)
		}
	}
	return r, nil
}

// lineClock notes when the first and the last line of what is written to
// it came.
type lineClock struct{ first, last time.Time }

func (c *lineClock) Write(p []byte) (int, error) {
	if bytes.IndexByte(p, '\n') >= 0 {
		c.last = time.Now()
		if c.first.IsZero() {
			c.first = c.last
		}
	}
	return len(p), nil
}

// runState runs a module once under librahost run, with -v and a fresh
// state directory if state, and returns the wall and CPU time and what it
// wrote to stderr.
func runState(lh, dir, wasm string, args, flags, env []string, state bool) (wall, cpu time.Duration, log string, err error) {
	wall, cpu, _, log, err = runStatePeak(lh, dir, wasm, args, flags, env, state)
	return wall, cpu, log, err
}

// runStatePeak is runState that also returns the process's peak resident
// memory (its VmHWM).
func runStatePeak(lh, dir, wasm string, args, flags, env []string, state bool) (wall, cpu time.Duration, peak uint64, log string, err error) {
	return runStateOut(lh, dir, wasm, args, flags, env, state, nil)
}

// runStateOut is runStatePeak that writes the module's output to stdout
// (nil: drops it).
func runStateOut(lh, dir, wasm string, args, flags, env []string, state bool, stdout io.Writer) (wall, cpu time.Duration, peak uint64, log string, err error) {
	cmd, st := runCmd(lh, dir, wasm, args, flags, env, state)
	if st != "" {
		defer os.RemoveAll(st)
	}
	var stderr strings.Builder
	cmd.Stdout, cmd.Stderr = stdout, &stderr
	t0 := time.Now()
	err = cmd.Run()
	wall = time.Since(t0)
	if err != nil {
		return 0, 0, 0, "", fmt.Errorf("%s: %v\n%s", filepath.Base(wasm), err, stderr.String())
	}
	return wall, cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime(), peakRSS(cmd.ProcessState), stderr.String(), nil
}
