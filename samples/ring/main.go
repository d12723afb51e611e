// Command ring passes a token around a ring of workers: rank 0 starts it,
// every rank adds its rank and passes it on, and every hop is checked
// against the value it must carry. Run it with several workers:
//
//	librahost run -n 4 samples/ring -- -laps 1000
package main

import (
	"encoding/binary"
	"flag"
	"fmt"
	"os"
	"time"

	libra "github.com/librahost/librahost/guest-sdk"
)

func main() {
	laps := flag.Int("laps", 1000, "times the token goes round")
	hold := flag.String("hold", "", "before it ends, rank 0 waits until this `file` exists (a test holds a job open with it)")
	flag.Parse()
	rank, size := libra.Rank(), libra.Size()
	if size < 2 {
		fmt.Fprintln(os.Stderr, "ring: run with at least 2 workers (-n)")
		os.Exit(2)
	}
	next, prev := (rank+1)%size, (rank+size-1)%size
	// Rank 0 starts lap l with the token at l*sum (sum = 0+1+...+size-1);
	// every other rank adds its own rank before passing it on.
	sum := uint64(size * (size - 1) / 2)
	buf := make([]byte, 8)
	var token uint64
	for lap := 0; lap < *laps; lap++ {
		if rank == 0 {
			binary.LittleEndian.PutUint64(buf, token)
			if err := libra.Send(next, 1, buf); err != nil {
				fail(err)
			}
		}
		m, err := libra.Recv(prev, 1)
		if err != nil {
			fail(err)
		}
		token = binary.LittleEndian.Uint64(m.Data)
		// Arriving at rank r in lap l, the token has collected l full laps
		// and ranks 1..r-1 of this one (rank 0 adds nothing).
		want := uint64(lap)*sum + uint64(prev*(prev+1)/2)
		if rank == 0 {
			want = uint64(lap+1) * sum
		}
		if token != want {
			fail(fmt.Errorf("lap %d: rank %d got %d from %d, want %d", lap, rank, token, prev, want))
		}
		if rank != 0 {
			token += uint64(rank)
			binary.LittleEndian.PutUint64(buf, token)
			if err := libra.Send(next, 1, buf); err != nil {
				fail(err)
			}
		}
	}
	if rank == 0 {
		fmt.Printf("ring of %d: %d laps, token %d, every hop checked\n", size, *laps, token)
	}
	if rank == 0 && *hold != "" {
		waitFor(*hold)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "ring:", err)
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
