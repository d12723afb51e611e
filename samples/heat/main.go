// Command heat solves the 2-D heat equation on a square plate with an
// explicit stencil, split by rows among the workers: each step every rank
// exchanges its edge rows (halos) with its neighbours, and every -every
// steps an Allreduce sums the residual and the heat, which rank 0 prints.
// The output is the same on every run with the same flags and -n.
//
//	librahost run -n 4 --checkpoint-every 1s -v samples/heat
package main

import (
	"encoding/binary"
	"flag"
	"fmt"
	"math"
	"os"
	"time"

	libra "github.com/librahost/librahost/guest-sdk"
)

const (
	tagUp   = 1 // a rank's first row, to the rank above
	tagDown = 2 // a rank's last row, to the rank below
)

func main() {
	n := flag.Int("grid", 256, "the plate is grid×grid cells")
	steps := flag.Int("steps", 800, "time steps")
	every := flag.Int("every", 40, "print the residual every this many steps")
	hold := flag.String("hold", "", "before it ends, rank 0 waits until this `file` exists (a test holds a job open with it)")
	flag.Parse()
	rank, size := libra.Rank(), libra.Size()
	if *n < size {
		fail(fmt.Errorf("a grid of %d rows cannot be split among %d workers", *n, size))
	}
	// Rows lo..hi-1 are this rank's; u has one halo row above and below.
	lo, hi := rank**n/size, (rank+1)**n/size
	rows, w := hi-lo, *n
	u := make([]float64, (rows+2)*w)
	next := make([]float64, len(u))
	// A hot square in the middle of the plate; the edges are held at 0.
	for i := lo; i < hi; i++ {
		for j := 0; j < w; j++ {
			if i > w*3/8 && i < w*5/8 && j > w*3/8 && j < w*5/8 {
				u[(i-lo+1)*w+j] = 100
			}
		}
	}
	const alpha = 0.2
	row := make([]byte, 8*w)
	for step := 1; step <= *steps; step++ {
		// Halo exchange: send edge rows first (Send does not block), then
		// receive the neighbours'.
		if rank > 0 {
			send(rank-1, tagUp, u[w:2*w], row)
		}
		if rank < size-1 {
			send(rank+1, tagDown, u[rows*w:(rows+1)*w], row)
		}
		if rank > 0 {
			recv(rank-1, tagDown, u[0:w])
		}
		if rank < size-1 {
			recv(rank+1, tagUp, u[(rows+1)*w:(rows+2)*w])
		}
		var res, heat float64
		for i := 1; i <= rows; i++ {
			g := lo + i - 1
			for j := 0; j < w; j++ {
				k := i*w + j
				if g == 0 || g == w-1 || j == 0 || j == w-1 {
					next[k] = 0
					continue
				}
				v := u[k] + alpha*(u[k-w]+u[k+w]+u[k-1]+u[k+1]-4*u[k])
				d := v - u[k]
				res += d * d
				heat += v
				next[k] = v
			}
		}
		u, next = next, u
		if step%*every == 0 || step == *steps {
			t, err := libra.AllreduceFloat64([]float64{res, heat}, libra.Sum)
			if err != nil {
				fail(err)
			}
			if rank == 0 {
				fmt.Printf("step %5d  residual %.9e  heat %.6f\n", step, math.Sqrt(t[0]), t[1])
			}
		}
	}
	if rank == 0 && *hold != "" {
		waitFor(*hold)
	}
}

func send(dst, tag int, v []float64, buf []byte) {
	for i, f := range v {
		binary.LittleEndian.PutUint64(buf[8*i:], math.Float64bits(f))
	}
	if err := libra.Send(dst, tag, buf[:8*len(v)]); err != nil {
		fail(err)
	}
}

func recv(src, tag int, v []float64) {
	m, err := libra.Recv(src, tag)
	if err != nil {
		fail(err)
	}
	if len(m.Data) != 8*len(v) {
		fail(fmt.Errorf("halo of %d bytes from rank %d, want %d", len(m.Data), src, 8*len(v)))
	}
	for i := range v {
		v[i] = math.Float64frombits(binary.LittleEndian.Uint64(m.Data[8*i:]))
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "heat:", err)
	os.Exit(1)
}

// waitFor returns once path exists.
func waitFor(path string) {
	for {
		if _, err := os.Stat(path); err == nil {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}
