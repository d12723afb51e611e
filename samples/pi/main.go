// Command pi estimates π by Monte Carlo: each worker throws its share of
// darts with its own seeded generator and Reduce sums the hits at rank 0.
// The result is the same on every run with the same -n and -darts.
//
//	librahost run -n 4 samples/pi -- -darts 40000000
package main

import (
	"flag"
	"fmt"
	"math"
	"math/rand/v2"
	"os"

	libra "github.com/librahost/librahost/guest-sdk"
)

func main() {
	darts := flag.Int64("darts", 20_000_000, "darts thrown in all")
	flag.Parse()
	rank, size := libra.Rank(), libra.Size()
	share := *darts / int64(size)
	if rank == size-1 {
		share = *darts - share*int64(size-1)
	}
	rng := rand.New(rand.NewPCG(uint64(rank), 314159))
	var hits int64
	for i := int64(0); i < share; i++ {
		x, y := rng.Float64(), rng.Float64()
		if x*x+y*y <= 1 {
			hits++
		}
	}
	total, err := libra.ReduceFloat64(0, []float64{float64(hits), float64(share)}, libra.Sum)
	if err != nil {
		fmt.Fprintln(os.Stderr, "pi:", err)
		os.Exit(1)
	}
	if rank == 0 {
		est := 4 * total[0] / total[1]
		fmt.Printf("pi ≈ %.6f from %d darts on %d workers (error %.6f)\n", est, int64(total[1]), size, math.Abs(est-math.Pi))
	}
}
