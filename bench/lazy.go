package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// benchLazy measures restores of guests of several memory sizes (the
// checkpoint benchmarks' guest, host/testdata/mem, stopped by SIGTERM
// after its fill, with a final checkpoint) under librahost run -v
// --resume, lazy and eager (LIBRAHOST_LAZY=off): the time from the
// restore's start (its up-front check) to the guest's first instruction
// and to all memory resident (the verbose lines say both), and the peak
// resident memory of librahost and of the lazy restore's filler.
func benchLazy(lh, dir, root string, runs int, sizes []int) error {
	wasm, err := buildGuest(dir, "mem", filepath.Join(root, "host/testdata/mem"), false)
	if err != nil {
		return err
	}
	fmt.Printf("restores: host/testdata/mem stopped after its fill (final checkpoint), then run -v --resume, killed once all memory is in; load %s\n\n", loadAvg())
	fmt.Println("Median of the runs. To first instruction: from the restore's start (the up-front check: for lazy, the file delta's chunks and a snapshot of the index pinned for the filler, which finds each chunk's place as it goes; for eager, every chunk read) to the guest's start; for eager the memory is all in then.")
	fmt.Println()
	fmt.Println("| guest memory | restore | to first instruction (check + map/read) | filler serving after | to all resident | librahost peak RSS | filler peak RSS |")
	fmt.Println("|---|---|---|---|---|---|---|")
	for _, mib := range sizes {
		state := filepath.Join(dir, fmt.Sprintf("lazy-%d", mib))
		os.RemoveAll(state)
		if err := stopAfterFill(lh, state, wasm, mib); err != nil {
			return err
		}
		for _, v := range []struct {
			name string
			env  []string
		}{{"eager", []string{"LIBRAHOST_LAZY=off"}}, {"lazy", nil}} {
			var first, check, mapped, resident, ready []time.Duration
			var peak, filler uint64
			ran := ""
			for range runs {
				r, err := resumeOnce(lh, state, v.env)
				if err != nil {
					return fmt.Errorf("%d MiB %s: %v", mib, v.name, err)
				}
				ran = r.kind
				first, check, mapped = append(first, r.first), append(check, r.check), append(mapped, r.mapped)
				resident, ready = append(resident, r.resident), append(ready, r.ready)
				peak, filler = max(peak, r.peak), max(filler, r.filler)
			}
			kind := v.name
			if ran != v.name {
				kind += " (ran: " + ran + ")"
			}
			fill, serving := "–", "–"
			if filler > 0 {
				fill, serving = fmt.Sprintf("%d MiB", filler>>20), ms2(median(ready))
			}
			fmt.Printf("| %s | %s | %s (%s + %s) | %s | %s | %d MiB | %s |\n", mem(mib), kind,
				ms2(median(first)), ms2(median(check)), ms2(median(mapped)), serving, ms(median(resident)), peak>>20, fill)
		}
		os.RemoveAll(state)
	}
	return nil
}

// stopAfterFill runs the guest until it says it is ready (its memory
// filled), then stops it with SIGTERM, which takes a final checkpoint.
func stopAfterFill(lh, state, wasm string, mib int) error {
	cmd := exec.Command(lh, "run", "--state", state, wasm, "--", fmt.Sprint(mib), "10", "1000000000")
	out, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	var errb strings.Builder
	cmd.Stderr = &errb
	if err := cmd.Start(); err != nil {
		return err
	}
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		if sc.Text() == "ready" {
			break
		}
	}
	cmd.Process.Signal(syscall.SIGTERM)
	go io.Copy(io.Discard, out)
	err = cmd.Wait()
	var ee *exec.ExitError
	if errors.As(err, &ee) && ee.ExitCode() == 143 {
		return nil
	}
	return fmt.Errorf("stopping the %d MiB guest: %v\n%s", mib, err, errb.String())
}

type resumeResult struct {
	kind                                  string
	first, check, mapped, resident, ready time.Duration
	peak, filler                          uint64
}

var (
	restoreLine  = regexp.MustCompile(`restore: (lazy|eager)[^\n]*the guest runs ([0-9.]+)ms after the restore began \((?:index|check) ([0-9.]+)ms, memory (?:mapped|read) ([0-9.]+)ms\)`)
	residentLine = regexp.MustCompile(`resident (\S+) after the restore began \(filler ready after ([0-9.]+)ms, peak ([0-9.]+) (\w+)\)`)
)

// resumeOnce resumes the run in state and kills it once its memory is all
// in (for an eager restore, once it says how it restored).
func resumeOnce(lh, state string, env []string) (resumeResult, error) {
	var r resumeResult
	cmd := exec.Command(lh, "run", "-v", "--resume", "--state", state)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout = io.Discard
	errp, err := cmd.StderrPipe()
	if err != nil {
		return r, err
	}
	if err := cmd.Start(); err != nil {
		return r, err
	}
	var log strings.Builder
	sc := bufio.NewScanner(errp)
	for sc.Scan() {
		line := sc.Text()
		log.WriteString(line + "\n")
		if m := restoreLine.FindStringSubmatch(line); m != nil {
			r.kind = m[1]
			r.first, r.check, r.mapped = msDur(m[2]), msDur(m[3]), msDur(m[4])
			if r.kind == "eager" {
				r.resident = r.first
				break
			}
		}
		if m := residentLine.FindStringSubmatch(line); m != nil {
			r.resident, _ = time.ParseDuration(m[1])
			r.ready = msDur(m[2])
			v, _ := strconv.ParseFloat(m[3], 64)
			r.filler = uint64(v * float64(unitBytes(m[4])))
			break
		}
	}
	cmd.Process.Kill()
	go io.Copy(io.Discard, errp)
	cmd.Wait()
	if r.kind == "" || (r.kind == "lazy" && r.resident == 0) {
		return r, fmt.Errorf("no restore line:\n%s", log.String())
	}
	r.peak = peakRSS(cmd.ProcessState)
	return r, nil
}

func msDur(s string) time.Duration {
	v, _ := strconv.ParseFloat(s, 64)
	return time.Duration(v * 1e6)
}

func unitBytes(u string) uint64 {
	switch u {
	case "KiB":
		return 1 << 10
	case "MiB":
		return 1 << 20
	case "GiB":
		return 1 << 30
	}
	return 1
}
