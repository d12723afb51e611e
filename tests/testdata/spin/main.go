// spin prints "computing", then mixes a hash through argv[1] rounds of
// 2^20 calls of small functions without calling the host, and prints the
// hash: a guest that computes until it ends, for the preemption tests.
package main

import (
	"fmt"
	"os"
	"strconv"
)

// mix calls step so that it has a stack check, where the host's poke
// preempts the guest for a checkpoint (a loop of calls of leaf functions
// only, which have none, is not preemptible).
//
//go:noinline
func mix(h, v uint64) uint64 {
	return step(h ^ v)
}

//go:noinline
func step(h uint64) uint64 { return h * 1099511628211 }

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
