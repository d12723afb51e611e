// ticks prints "tick i" every 20 ms, for i from 0 to its argument
// (default 100000): a guest that runs until a test stops it.
package main

import (
	"fmt"
	"os"
	"strconv"
	"time"
)

func main() {
	n := 100000
	if len(os.Args) > 1 {
		n, _ = strconv.Atoi(os.Args[1])
	}
	for i := 0; i < n; i++ {
		time.Sleep(20 * time.Millisecond)
		fmt.Printf("tick %d\n", i)
	}
}
