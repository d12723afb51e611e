// Command jobfiles is a job whose workers write files while they pass a
// token round a ring: each rank appends a line per lap to /data/rank<r>.txt
// and rewrites /data/lap<r>.txt with its lap count. At the end rank 0
// prints every file's length and hash, so a resumed job whose files were
// not rolled back with it prints something else.
package main

import (
	"crypto/sha256"
	"encoding/binary"
	"flag"
	"fmt"
	"os"

	libra "github.com/librahost/librahost/guest-sdk"
)

func main() {
	laps := flag.Int("laps", 2000, "laps of the token")
	flag.Parse()
	rank, size := libra.Rank(), libra.Size()
	next, prev := (rank+1)%size, (rank+size-1)%size
	log, err := os.OpenFile(fmt.Sprintf("/data/rank%d.txt", rank), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	check(err)
	buf := make([]byte, 8)
	var token uint64
	for lap := 0; lap < *laps; lap++ {
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
	check(libra.Barrier())
	if rank == 0 {
		for r := range size {
			for _, name := range []string{"rank%d.txt", "lap%d.txt"} {
				b, err := os.ReadFile(fmt.Sprintf("/data/"+name, r))
				check(err)
				fmt.Printf("%s: %d bytes, %x\n", fmt.Sprintf(name, r), len(b), sha256.Sum256(b))
			}
		}
	}
}

func check(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "jobfiles:", err)
		os.Exit(1)
	}
}
