// Command jobfiles is a job whose workers write files while they pass a
// token round a ring: each rank appends a line per lap to /data/rank<r>.txt
// and rewrites /data/lap<r>.txt with its lap count. At the end each rank
// sends its files' lengths and hashes to rank 0, which prints them all, so
// a resumed or moved job whose files were not rolled back or moved with it
// prints something else. With -hold DIR -holds N, rank 0 waits at lap
// k*laps/(N+1) until DIR/k exists (k = 1..N): a test holds it there.
package main

import (
	"crypto/sha256"
	"encoding/binary"
	"flag"
	"fmt"
	"os"
	"time"

	libra "github.com/librahost/librahost/guest-sdk"
)

func main() {
	laps := flag.Int("laps", 2000, "laps of the token")
	hold := flag.String("hold", "", "rank 0 waits at the holds until `dir`/k exists")
	holds := flag.Int("holds", 0, "the holds, evenly spread over the laps")
	flag.Parse()
	rank, size := libra.Rank(), libra.Size()
	next, prev := (rank+1)%size, (rank+size-1)%size
	log, err := os.OpenFile(fmt.Sprintf("/data/rank%d.txt", rank), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	check(err)
	buf := make([]byte, 8)
	var token uint64
	for lap := 0; lap < *laps; lap++ {
		for k := 1; rank == 0 && k <= *holds; k++ {
			if lap == k**laps/(*holds+1) {
				waitFor(fmt.Sprintf("%s/%d", *hold, k))
			}
		}
		if rank == 0 {
			binary.LittleEndian.PutUint64(buf, token)
			check(libra.Send(next, 1, buf))
		}
		m, err := libra.Recv(prev, 1)
		check(err)
		token = binary.LittleEndian.Uint64(m.Data) + 1
		_, err = fmt.Fprintf(log, "lap %d token %d\n", lap, token)
		check(err)
		check(os.WriteFile(fmt.Sprintf("/data/lap%d.txt", rank), []byte(fmt.Sprint(lap)), 0o644))
		if rank != 0 {
			binary.LittleEndian.PutUint64(buf, token)
			check(libra.Send(next, 1, buf))
		}
	}
	check(log.Close())
	var mine string
	for _, name := range []string{"rank%d.txt", "lap%d.txt"} {
		b, err := os.ReadFile(fmt.Sprintf("/data/"+name, rank))
		check(err)
		mine += fmt.Sprintf("%s: %d bytes, %x\n", fmt.Sprintf(name, rank), len(b), sha256.Sum256(b))
	}
	if rank != 0 {
		check(libra.Send(0, 2, []byte(mine)))
		return
	}
	fmt.Print(mine)
	for r := 1; r < size; r++ {
		m, err := libra.Recv(r, 2)
		check(err)
		fmt.Print(string(m.Data))
	}
}

func waitFor(path string) {
	for {
		if _, err := os.Stat(path); err == nil {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func check(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "jobfiles:", err)
		os.Exit(1)
	}
}
