// Command librahost builds WebAssembly guests and runs them with
// transparent checkpoints. Run `librahost help` for the commands.
package main

import "os"

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }
