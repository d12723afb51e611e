// A guest with no files whose fd table changes: it closes stdin, then
// keeps checking that fd 0 stays closed. A restore that rebuilt a fresh fd
// table would reopen it.
package main

import (
	"fmt"
	"os"
	"syscall"
	"time"
)

func main() {
	os.Stdin.Close()
	for i := 0; i < 30; i++ {
		time.Sleep(50 * time.Millisecond)
		var b [1]byte
		_, err := syscall.Read(0, b[:])
		fmt.Printf("step %d: read fd 0: %v\n", i, err)
	}
}
