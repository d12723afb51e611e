// dirtymem holds a buffer (MiB from argv[1], 64 by default), filled like
// the checkpoint benchmarks' guest (a quarter random, the rest
// structured; the random part differs by rank, so that the ranks' memories
// do not share chunks), and then rewrites a run of its
// pages at a steady rate: argv[2] per mille of the buffer (10) every
// argv[3] milliseconds (1000), in ten slices spread over that time, for
// argv[4] seconds (30). With checkpoints every argv[3] ms, each one sees
// about argv[2] per mille of the memory changed.
package main

import (
	"fmt"
	"os"
	"strconv"
	"time"

	libra "github.com/librahost/librahost/guest-sdk"
)

func main() {
	args := []int{64, 10, 1000, 30}
	for i := range args {
		if len(os.Args) > i+1 {
			v, err := strconv.Atoi(os.Args[i+1])
			if err != nil || v <= 0 {
				fmt.Fprintln(os.Stderr, "usage: dirtymem [MiB [permille [period-ms [seconds]]]], positive integers")
				os.Exit(2)
			}
			args[i] = v
		}
	}
	mib, permille, period, secs := args[0], args[1], time.Duration(args[2])*time.Millisecond, time.Duration(args[3])*time.Second
	buf := make([]byte, mib<<20)
	x := uint64(88172645463325252) + uint64(libra.Rank())*0x9e3779b97f4a7c15
	for i := 0; i < len(buf); i += 8 {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		if (i>>16)%4 == 0 {
			buf[i], buf[i+1], buf[i+2], buf[i+3] = byte(x), byte(x>>8), byte(x>>16), byte(x>>24)
		} else {
			buf[i] = byte(i>>12) + byte(libra.Rank())
		}
	}
	fmt.Println("ready")
	pages := len(buf) / 4096
	perSlice := float64(pages) * float64(permille) / 1000 / 10
	start := time.Now()
	off, owed := 0, 0.0
	for slice := 1; time.Since(start) < secs; slice++ {
		owed += perSlice
		for ; owed >= 1; owed-- {
			buf[off*4096]++
			off = (off + 1) % pages
		}
		// The slices keep to the clock, whatever the pauses.
		if d := time.Until(start.Add(time.Duration(slice) * period / 10)); d > 0 {
			time.Sleep(d)
		}
	}
	fmt.Println("done", buf[0])
}
