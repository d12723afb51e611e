// pingpong bounces a small message between ranks 0 and 1 argv[1] times;
// rank 0 then prints each round trip's time in nanoseconds, one a line.
// It is the guest of the message-latency benchmark.
package main

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"time"

	libra "github.com/librahost/librahost/guest-sdk"
)

func main() {
	n, _ := strconv.Atoi(os.Args[1])
	rank := libra.Rank()
	msg := make([]byte, 64)
	rtts := make([]time.Duration, 0, n)
	for i := 0; i < n; i++ {
		if rank == 0 {
			t0 := time.Now()
			libra.Send(1, 0, msg)
			libra.Recv(1, 0)
			rtts = append(rtts, time.Since(t0))
		} else {
			libra.Recv(0, 0)
			libra.Send(0, 0, msg)
		}
	}
	if rank == 0 {
		w := bufio.NewWriter(os.Stdout)
		for _, d := range rtts {
			fmt.Fprintln(w, int64(d))
		}
		w.Flush()
	}
}
