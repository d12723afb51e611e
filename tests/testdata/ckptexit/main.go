// ckptexit asks for a checkpoint and ends at once, while the checkpoint
// is still being written.
package main

import (
	"fmt"

	libra "github.com/librahost/librahost/guest-sdk"
)

func main() {
	fmt.Println("before")
	libra.Checkpoint()
	fmt.Println("done")
}
