package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path"
	"strconv"
	"strings"

	"github.com/librahost/librahost/host"
	"github.com/librahost/librahost/host/job"
	"github.com/librahost/librahost/host/wasmbin"
)

// workerOverhead is what a worker costs besides its linear memory (its
// instance, stacks, buffers and a share of the compiled code): about 12 MB
// measured with a small guest, rounded up.
const workerOverhead = 16 << 20

// maxWorkers bounds -n wherever memory does not: the largest job a host
// takes part in.
const maxWorkers = 1 << 16

// checkRunFlags refuses flag values that would silently do something
// else than asked: a negative interval turning checkpoints off, a seed
// without --deterministic ignored, a worker count below one run as one.
func checkRunFlags(fs *flag.FlagSet, n int, every int64, deterministic bool) error {
	if n < 1 {
		return checkWorkers(n)
	}
	if err := checkEvery(every); err != nil {
		return err
	}
	seed := false
	fs.Visit(func(f *flag.Flag) { seed = seed || f.Name == "seed" })
	if seed && !deterministic {
		return errors.New("--seed takes effect only with --deterministic: add --deterministic or drop --seed")
	}
	return nil
}

// checkEvery refuses a negative checkpoint interval, which would turn
// periodic checkpoints off.
func checkEvery(every int64) error {
	if every < 0 {
		return errors.New("--checkpoint-every must be positive (leave it out for no periodic checkpoints)")
	}
	return nil
}

// checkWorkers refuses a worker count below one or beyond maxWorkers.
func checkWorkers(n int) error {
	if n < 1 || n > maxWorkers {
		return fmt.Errorf("-n %d: want a number of workers from 1 to %d", n, maxWorkers)
	}
	return nil
}

// checkWorkerMemory refuses n workers of module when they would not fit
// in the memory this machine has available: each costs workerOverhead and
// its initial linear memory.
func checkWorkerMemory(n int, module []byte, meminfo io.Reader) error {
	avail, ok := memAvailable(meminfo)
	if !ok {
		return nil // not Linux, or no such line: nothing to check against
	}
	each := uint64(workerOverhead)
	if m, err := wasmbin.Parse(module); err == nil && len(m.Memories) > 0 && !m.Memories[0].Is64 {
		each += m.Memories[0].Min * 65536
	}
	if need := uint64(n) * each; need > avail {
		return fmt.Errorf("-n %d: %d workers need about %s (%s each) but this machine has %s available: at most %d fit",
			n, n, host.FormatBytes(need), host.FormatBytes(each), host.FormatBytes(avail), avail/each)
	}
	return nil
}

// memAvailable reads MemAvailable from /proc/meminfo's text.
func memAvailable(meminfo io.Reader) (uint64, bool) {
	sc := bufio.NewScanner(meminfo)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 3 && f[0] == "MemAvailable:" && f[2] == "kB" {
			kb, err := strconv.ParseUint(f[1], 10, 64)
			return kb << 10, err == nil
		}
	}
	return 0, false
}

// checkJob checks n workers of the module at path against this machine's
// memory, then against maxWorkers.
func checkJob(n int, path string) error {
	module, err := os.ReadFile(path)
	if err != nil {
		return nil // the run itself says so
	}
	if f, err := os.Open("/proc/meminfo"); err == nil {
		err = checkWorkerMemory(n, module, f)
		f.Close()
		if err != nil {
			return err
		}
	}
	return checkWorkers(n)
}

// checkMounts refuses two mounts at one guest path: one would hide the
// other.
func checkMounts(ms []job.Mount) error {
	seen := map[string]string{}
	for _, m := range ms {
		g := path.Clean(m.GuestPath)
		if prev, ok := seen[g]; ok {
			return fmt.Errorf("--dir: %s and %s are both mounted at %s: give each its own guest path", prev, m.HostPath, g)
		}
		seen[g] = m.HostPath
	}
	return nil
}
