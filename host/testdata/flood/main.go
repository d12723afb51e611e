// flood sends argv[1] messages of argv[2] bytes to rank 1, message i
// carrying i in its first 8 bytes, and prints a line after each send. With
// nobody acking, its send window fills and it waits in Send.
package main

import (
	"encoding/binary"
	"fmt"
	"os"
	"strconv"

	libra "github.com/librahost/librahost/guest-sdk"
)

func main() {
	n, _ := strconv.Atoi(os.Args[1])
	size, _ := strconv.Atoi(os.Args[2])
	buf := make([]byte, max(size, 8))
	for i := 0; i < n; i++ {
		binary.LittleEndian.PutUint64(buf, uint64(i))
		if err := libra.Send(1, 0, buf); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		fmt.Println("sent", i)
	}
}
