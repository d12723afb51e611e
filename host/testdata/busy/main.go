// busy computes for argv[2] seconds in one of three ways (argv[1]):
// "compute" (one goroutine calling small functions), "alloc" (a goroutine
// that allocates, so the collector runs often) or "goroutines" (four
// computing goroutines). It is the guest of the pause-latency benchmark.
package main

import (
	"fmt"
	"os"
	"strconv"
	"sync"
	"time"
)

var sink [][]byte

//go:noinline
func work(h uint64) uint64 {
	for i := 0; i < 64; i++ {
		h = mix(h, uint64(i))
	}
	return h
}

//go:noinline
func mix(h, v uint64) uint64 {
	h ^= v
	return h * 1099511628211
}

func compute(until time.Time) uint64 {
	h := uint64(1)
	for i := 0; ; i++ {
		h = work(h)
		if i%4096 == 0 && time.Now().After(until) {
			return h
		}
	}
}

func alloc(until time.Time) uint64 {
	h := uint64(1)
	for i := 0; ; i++ {
		b := make([]byte, 256+i%4096)
		b[0] = byte(h)
		sink = append(sink, b)
		if len(sink) > 4096 {
			sink = sink[:0]
		}
		h = work(h)
		if i%1024 == 0 && time.Now().After(until) {
			return h
		}
	}
}

func main() {
	mode := os.Args[1]
	secs, _ := strconv.ParseFloat(os.Args[2], 64)
	until := time.Now().Add(time.Duration(secs * float64(time.Second)))
	switch mode {
	case "compute":
		fmt.Println(compute(until) != 0)
	case "alloc":
		fmt.Println(alloc(until) != 0)
	case "goroutines":
		var wg sync.WaitGroup
		for g := 0; g < 4; g++ {
			wg.Add(1)
			go func() { defer wg.Done(); compute(until) }()
		}
		wg.Wait()
		fmt.Println(true)
	}
}
