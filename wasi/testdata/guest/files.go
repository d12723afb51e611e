package main

import (
	"fmt"
	"os"
)

func files(args []string) {
	for _, a := range args {
		b, err := os.ReadFile(a)
		fmt.Printf("read %s: %q %v\n", a, b, err)
	}
}
