// Command guest exercises wasi_snapshot_preview1 from a Go program built for
// GOOS=wasip1. Its first argument selects a scenario.
package main

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"strings"
	"time"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: guest scenario")
		os.Exit(2)
	}
	switch os.Args[1] {
	case "basic":
		basic()
	case "files":
		files(os.Args[2:])
	case "io":
		fileIO(os.Args[2:])
	case "det":
		det()
	case "churn":
		churn(os.Args[2:])
	default:
		fmt.Fprintln(os.Stderr, "unknown scenario", os.Args[1])
		os.Exit(2)
	}
}

func basic() {
	fmt.Println("args:", strings.Join(os.Args, " "))
	fmt.Println("env:", os.Getenv("GREETING"))
	start := time.Now()
	time.Sleep(30 * time.Millisecond)
	fmt.Println("slept:", time.Since(start) >= 30*time.Millisecond)
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		fmt.Println("rand error:", err)
	}
	fmt.Println("rand:", hex.EncodeToString(b[:]))
	in, err := io.ReadAll(os.Stdin)
	fmt.Printf("stdin: %q %v\n", in, err)
	fmt.Fprintln(os.Stderr, "to stderr")
	os.Exit(3)
}

var fixedTime = time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)

// det prints what a deterministic run must repeat: times, a sleep's
// length, random bytes, and the order of a map's keys.
func det() {
	start := time.Now()
	fmt.Println("now:", start.UnixNano())
	time.Sleep(50 * time.Millisecond)
	fmt.Println("slept:", time.Since(start))
	var b [16]byte
	rand.Read(b[:])
	fmt.Println("rand:", hex.EncodeToString(b[:]))
	m := map[int]bool{}
	for i := 0; i < 20; i++ {
		m[i] = true
	}
	for k := range m {
		fmt.Print(k, " ")
	}
	fmt.Println()
	fmt.Println("now:", time.Now().UnixNano())
}
