// randwrite is a plain Go program (no SDK) that writes its memory at
// random: it allocates a buffer (MiB from argv[1], 1024 by default),
// touches every page, then does argv[2] rounds (40) of 2^20 single-byte
// increments at pseudo-random offsets, printing a line per round.
package main

import (
	"fmt"
	"os"
	"strconv"
)

func main() {
	mib, rounds := 1024, 40
	if len(os.Args) > 1 {
		mib, _ = strconv.Atoi(os.Args[1])
	}
	if len(os.Args) > 2 {
		rounds, _ = strconv.Atoi(os.Args[2])
	}
	buf := make([]byte, mib<<20)
	for i := 0; i < len(buf); i += 4096 {
		buf[i] = 1
	}
	x := uint64(88172645463325252)
	for r := 0; r < rounds; r++ {
		for k := 0; k < 1<<20; k++ {
			x ^= x << 13
			x ^= x >> 7
			x ^= x << 17
			buf[x%uint64(len(buf))]++
		}
		fmt.Println("round", r, buf[x%uint64(len(buf))])
	}
}
