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
// lands on the host) and drifts within a run by as much, alone or not:
// take several runs. So a third figure is taken of each checkpointed run
// that the drift does not sway: what its checkpoints cost the rounds they
// overlapped, against the rounds around them (stalls).
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
	var byStalls []string
	for _, mib := range sizes {
		args := []string{fmt.Sprint(mib), fmt.Sprint(rounds)}
		times := make([][]time.Duration, len(variants))
		walls := make([][]time.Duration, len(variants))
		pauses := make([][]time.Duration, len(variants))
		peaks := make([]uint64, len(variants))
		costs := make([][]float64, len(variants))
		betweens := make([][]time.Duration, len(variants))
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
					costs[i] = append(costs[i], r.rounds.Seconds()/(r.rounds-r.stalled).Seconds())
					betweens[i] = append(betweens[i], r.between)
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
		row = fmt.Sprintf("| %s |", mem(mib))
		for i, v := range variants {
			if v.flags != nil {
				row += fmt.Sprintf(" %.2f× |", median(costs[i]))
			}
			row += fmt.Sprintf(" %.1f ms |", median(betweens[i]).Seconds()*1000)
		}
		byStalls = append(byStalls, row)
	}
	fmt.Println()
	fmt.Println("What the checkpoints cost the rounds they overlapped (stalls: their time beyond the median of up to 10 rounds on each side that overlap none), as a ratio of the rounds' time to it without that cost, and the median round outside checkpoints; medians of the runs:")
	fmt.Println()
	head, sep = "| guest memory |", "|---|"
	for _, v := range variants {
		if v.flags != nil {
			head += " " + v.name + ": by stalls |"
			sep += "---|"
		}
		head += " round p50 |"
		sep += "---|"
	}
	fmt.Println(head)
	fmt.Println(sep)
	for _, row := range byStalls {
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
	// stalled is what the checkpoints cost the rounds they overlapped
	// (stalls); between is the median round outside them.
	stalled, between time.Duration
}

// timeRunRounds runs a module once under librahost with flags (a fresh
// state directory and -v when there are any) and returns the wall time,
// the time from its first line of output to its last, the peak resident
// memory, the checkpoints' pauses (from the -v lines) and what they cost
// the rounds (stalls).
func timeRunRounds(lh, dir, wasm string, args, flags, env []string) (roundsRun, error) {
	var out, errs lineLog
	errs.keep = true
	wall, _, peak, log, err := runStateOut(lh, dir, wasm, args, flags, env, flags != nil, &out, &errs)
	if err != nil {
		return roundsRun{}, err
	}
	if len(out.times) == 0 {
		return roundsRun{}, fmt.Errorf("%s wrote nothing", filepath.Base(wasm))
	}
	r := roundsRun{wall: wall, rounds: out.times[len(out.times)-1].Sub(out.times[0]), peak: peak}
	for _, m := range pauseRE.FindAllStringSubmatch(log, -1) {
		if p, err := time.ParseDuration(m[1]); err == nil {
			r.pauses = append(r.pauses, p)
		}
	}
	r.stalled, r.between = stalls(out.times, checkpointSpans(errs))
	return r, nil
}

// checkpointSpans returns when each checkpoint of a run held its capture
// under way, from the -v lines that say it is durable: from its pause to
// that line.
func checkpointSpans(errs lineLog) [][2]time.Time {
	var spans [][2]time.Time
	for i, line := range errs.lines {
		m := durableRE.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		pause, err1 := time.ParseDuration(m[3]) // durableRE: dashboard.go
		write, err2 := time.ParseDuration(m[4])
		if err1 != nil || err2 != nil {
			continue
		}
		end := errs.times[i]
		spans = append(spans, [2]time.Time{end.Add(-write - pause), end})
	}
	return spans
}

// stallNeighbours is how many rounds on each side of a checkpoint's
// rounds stand for the guest's speed then.
const stallNeighbours = 10

// stalls measures what checkpoints cost a guest that prints a line per
// round of equal work, from the times its lines came (ends) and when the
// checkpoints were under way (spans): each checkpoint costs the rounds
// that overlap it their time beyond what as many rounds take around it
// (the median of up to stallNeighbours rounds on each side that overlap
// no checkpoint). The rounds' speed here drifts by a half over seconds,
// alone or not, so a run compared with its neighbouring rounds tells the
// checkpoints' cost where a run compared with another run does not.
// between is the median of the rounds that overlap no checkpoint.
func stalls(ends []time.Time, spans [][2]time.Time) (stalled, between time.Duration) {
	if len(ends) < 2 {
		return 0, 0
	}
	n := len(ends) - 1 // round i runs from ends[i] to ends[i+1]
	in := make([]bool, n)
	for i := range n {
		for _, s := range spans {
			if ends[i].Before(s[1]) && ends[i+1].After(s[0]) {
				in[i] = true
			}
		}
	}
	round := func(i int) time.Duration { return ends[i+1].Sub(ends[i]) }
	var free []time.Duration
	for i := range n {
		if !in[i] {
			free = append(free, round(i))
		}
	}
	if len(free) == 0 {
		return 0, 0
	}
	between = median(free)
	for i := 0; i < n; {
		if !in[i] {
			i++
			continue
		}
		j := i
		var spent time.Duration
		for ; j < n && in[j]; j++ {
			spent += round(j)
		}
		var near []time.Duration
		for k := i - 1; k >= 0 && len(near) < stallNeighbours; k-- {
			if !in[k] {
				near = append(near, round(k))
			}
		}
		for k, m := j, 0; k < n && m < stallNeighbours; k++ {
			if !in[k] {
				near = append(near, round(k))
				m++
			}
		}
		if len(near) == 0 {
			near = free
		}
		stalled += spent - time.Duration(j-i)*median(near)
		i = j
	}
	return stalled, between
}

// lineLog notes when each line written to it ended, and with keep the
// lines themselves.
type lineLog struct {
	keep    bool
	partial []byte
	times   []time.Time
	lines   []string
}

func (l *lineLog) Write(p []byte) (int, error) {
	now := time.Now()
	for rest := p; ; {
		i := bytes.IndexByte(rest, '\n')
		if i < 0 {
			if l.keep {
				l.partial = append(l.partial, rest...)
			}
			break
		}
		l.times = append(l.times, now)
		if l.keep {
			l.lines = append(l.lines, string(l.partial)+string(rest[:i]))
			l.partial = l.partial[:0]
		}
		rest = rest[i+1:]
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
	return runStateOut(lh, dir, wasm, args, flags, env, state, nil, nil)
}

// runStateOut is runStatePeak that writes the module's output to stdout
// (nil: drops it), and what it writes to stderr to stderr too (if not
// nil).
func runStateOut(lh, dir, wasm string, args, flags, env []string, state bool, stdout, stderrTo io.Writer) (wall, cpu time.Duration, peak uint64, log string, err error) {
	cmd, st := runCmd(lh, dir, wasm, args, flags, env, state)
	if st != "" {
		defer os.RemoveAll(st)
	}
	var stderr strings.Builder
	cmd.Stdout, cmd.Stderr = stdout, &stderr
	if stderrTo != nil {
		cmd.Stderr = io.MultiWriter(&stderr, stderrTo)
	}
	t0 := time.Now()
	err = cmd.Run()
	wall = time.Since(t0)
	if err != nil {
		return 0, 0, 0, "", fmt.Errorf("%s: %v\n%s", filepath.Base(wasm), err, stderr.String())
	}
	return wall, cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime(), peakRSS(cmd.ProcessState), stderr.String(), nil
}
