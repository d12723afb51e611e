// longjob: every rank prints that it started, then a tick every 100 ms
// for the number of seconds its first argument gives (default 600), so
// that a test can stop the job while it runs. With "flood" as its second
// argument it prints 4 KiB lines as fast as they are taken instead.
package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	libra "github.com/librahost/librahost/guest-sdk"
)

func main() {
	secs := 600
	if len(os.Args) > 1 {
		secs, _ = strconv.Atoi(os.Args[1])
	}
	flood := len(os.Args) > 2 && os.Args[2] == "flood"
	line := strings.Repeat("x", 4095)
	fmt.Printf("rank %d started\n", libra.Rank())
	end := time.Now().Add(time.Duration(secs) * time.Second)
	for i := 0; time.Now().Before(end); i++ {
		if flood {
			fmt.Println(line)
			continue
		}
		time.Sleep(100 * time.Millisecond)
		fmt.Printf("rank %d tick %d\n", libra.Rank(), i)
	}
}
