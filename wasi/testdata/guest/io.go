package main

import (
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"strconv"
)

// fileIO is a file I/O workload: "seq path MiB" writes a file of MiB in
// 64 KiB blocks and reads it back; "rand path ops" does ops random 4 KiB
// reads and writes, alternating, in the existing file path.
func fileIO(args []string) {
	n, _ := strconv.Atoi(args[2])
	switch args[0] {
	case "seq":
		f, err := os.Create(args[1])
		if err != nil {
			fail(err)
		}
		buf := make([]byte, 64<<10)
		for i := range buf {
			buf[i] = byte(i)
		}
		for i := 0; i < n*16; i++ {
			if _, err := f.Write(buf); err != nil {
				fail(err)
			}
		}
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			fail(err)
		}
		total := 0
		for {
			c, err := f.Read(buf)
			total += c
			if err == io.EOF {
				break
			}
			if err != nil {
				fail(err)
			}
		}
		f.Close()
		fmt.Println("read", total)
	case "rand":
		f, err := os.OpenFile(args[1], os.O_RDWR, 0)
		if err != nil {
			fail(err)
		}
		fi, _ := f.Stat()
		blocks := fi.Size() / 4096
		rng := rand.New(rand.NewPCG(1, 2))
		buf := make([]byte, 4096)
		for i := 0; i < n; i++ {
			off := rng.Int64N(blocks) * 4096
			if i%2 == 0 {
				_, err = f.ReadAt(buf, off)
			} else {
				_, err = f.WriteAt(buf, off)
			}
			if err != nil {
				fail(err)
			}
		}
		f.Close()
		fmt.Println("done", n)
	}
}
