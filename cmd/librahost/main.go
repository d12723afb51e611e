// Command librahost builds WebAssembly guests and runs them with
// transparent checkpoints. Run `librahost help` for the commands.
package main

import (
	"os"

	"github.com/librahost/librahost/host/lazy"
)

func main() {
	lazy.Main() // the filler of a lazy restore, when run as one
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}
