// count prints a running hash of a computation; its output depends on
// every step before it, so a wrong restore shows.
package main

import (
	"fmt"
	"os"
	"strconv"
)

func main() {
	n := 3000
	if len(os.Args) > 1 {
		n, _ = strconv.Atoi(os.Args[1])
	}
	h := uint64(1469598103934665603)
	data := make([]uint64, 1<<16)
	for i := 0; i < n; i++ {
		for j := range data {
			h ^= uint64(j) + data[j]
			h *= 1099511628211
			data[j] = h
		}
		if i%100 == 0 {
			fmt.Printf("step %d %x\n", i, h)
		}
	}
	fmt.Printf("done %x\n", h)
}
