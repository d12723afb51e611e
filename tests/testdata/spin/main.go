// spin prints "computing", then mixes a hash through argv[1] rounds of
// 2^20 calls of a small function without calling the host, and prints the
// hash: a guest that computes until it ends, for the preemption tests.
package main

import (
	"fmt"
	"os"
	"strconv"
)

//go:noinline
func mix(h, v uint64) uint64 {
	h ^= v
	return h * 1099511628211
}

func main() {
	rounds, _ := strconv.Atoi(os.Args[1])
	fmt.Println("computing")
	h := uint64(1469598103934665603)
	for r := 0; r < rounds; r++ {
		for i := uint64(0); i < 1<<20; i++ {
			h = mix(h, i)
		}
	}
	fmt.Printf("hash %x\n", h)
}
