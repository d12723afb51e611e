// plain is built as an ordinary wasip1 command, not by librahost.
package main

import "fmt"

func main() { fmt.Println("plain module ran") }
