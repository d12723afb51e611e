// gowait: rank 1 panics while the other ranks wait for a message that
// never comes; the job must end, not hang.
package main

import (
	"fmt"

	libra "github.com/librahost/librahost/guest-sdk"
)

func main() {
	if libra.Rank() == 1 {
		panic("rank 1 fails")
	}
	m, err := libra.Recv(libra.Any, libra.Any)
	fmt.Println("got", m.Src, err)
}
