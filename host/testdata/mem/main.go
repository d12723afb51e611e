// mem holds a large heap (MiB from argv[1]) and rewrites a small part of
// it (per mille from argv[2]) in each of argv[3] rounds, for checkpoint
// benchmarks. With argv[4] "ckpt" it asks for a checkpoint after each
// round, so that each one sees exactly one round's changes. With argv[5]
// "random" a round writes as many pages, at random, instead of a run;
// with "spray" it writes one byte in each 64 of them at random, as fast as
// it can, in main's own loop (a loop that also calls functions, so that
// its preemption checks read the counter the host may zero:
// wasmbin.PreemptCounterName). With argv[6] it sleeps that many
// milliseconds after each round (the host's --checkpoint-every then takes
// the checkpoints: argv[4] other than "ckpt").
package main

import (
	"fmt"
	"os"
	"strconv"
	"time"

	libra "github.com/librahost/librahost/guest-sdk"
)

func main() {
	mib, permille, rounds := 256, 10, 1<<30
	if len(os.Args) > 1 {
		mib, _ = strconv.Atoi(os.Args[1])
	}
	if len(os.Args) > 2 {
		permille, _ = strconv.Atoi(os.Args[2])
	}
	if len(os.Args) > 3 {
		rounds, _ = strconv.Atoi(os.Args[3])
	}
	ckpt := len(os.Args) > 4 && os.Args[4] == "ckpt"
	mode := ""
	if len(os.Args) > 5 {
		mode = os.Args[5]
	}
	var gap time.Duration
	if len(os.Args) > 6 {
		ms, _ := strconv.Atoi(os.Args[6])
		gap = time.Duration(ms) * time.Millisecond
	}
	buf := make([]byte, mib<<20)
	x := uint64(88172645463325252)
	for i := 0; i < len(buf); i += 8 { // a mix: a quarter random, the rest structured
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		if (i>>16)%4 == 0 {
			buf[i], buf[i+1], buf[i+2], buf[i+3] = byte(x), byte(x>>8), byte(x>>16), byte(x>>24)
		} else {
			buf[i] = byte(i >> 12)
		}
	}
	fmt.Println("ready")
	step := len(buf) * permille / 1000
	off := 0
	for r := 0; r < rounds; r++ {
		switch mode {
		case "random":
			x = scatter(buf, x, step)
		case "spray":
			for k := 0; k < step/64; k++ {
				x ^= x << 13
				x ^= x >> 7
				x ^= x << 17
				buf[x%uint64(len(buf))]++
			}
		default:
			off = touch(buf, off, step)
		}
		if ckpt {
			libra.Checkpoint()
		}
		if gap > 0 {
			time.Sleep(gap)
		}
	}
	fmt.Println("done", buf[0])
}

// touch dirties step bytes' worth of pages from off. It is a call, so the
// loop above is preemptible.
//
//go:noinline
func touch(buf []byte, off, step int) int {
	for i := 0; i < step; i += 4096 {
		buf[(off+i)%len(buf)]++
	}
	return (off + step) % len(buf)
}

// scatter writes one byte in each of step/4096 pages chosen at random.
//
//go:noinline
func scatter(buf []byte, x uint64, step int) uint64 {
	for i := 0; i < step; i += 4096 {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		buf[x%uint64(len(buf))]++
	}
	return x
}
