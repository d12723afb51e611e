// A guest that sleeps between ticks and checks, in its own monotonic
// time, that each sleep took about what it asked for: a restored guest
// whose clock did not continue from the checkpoint would see its timers
// fire late or early.
package main

import (
	"fmt"
	"os"
	"time"
)

func main() {
	const ticks = 40
	const step = 100 * time.Millisecond
	last := time.Now()
	bad := 0
	for i := 0; i < ticks; i++ {
		time.Sleep(step)
		d := time.Since(last)
		last = time.Now()
		// Never early (a clock that went back or started over), and not
		// seconds late (a clock that jumped by the time between runs);
		// the bound leaves room for a loaded machine's scheduling.
		ok := d >= step && d < 50*step
		if !ok {
			bad++
		}
		fmt.Printf("tick %d ok=%v\n", i, ok)
	}
	if bad > 0 {
		fmt.Fprintf(os.Stderr, "%d ticks off time\n", bad)
		os.Exit(1)
	}
}
