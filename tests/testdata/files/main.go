// files changes the files of its mount in every way a program can, step
// by step, and prints what it reads back: writes, appends, overwrites in
// place, truncation, creation, renames, removal of files and directories.
// Its output and final files are the same on every uninterrupted run.
package main

import (
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

func must(err error) {
	if err != nil {
		fmt.Println("error:", err)
		os.Exit(1)
	}
}

func main() {
	root := os.Args[1]
	steps, _ := strconv.Atoi(os.Args[2])
	log := filepath.Join(root, "log.txt")
	for i := 0; i < steps; i++ {
		dir := filepath.Join(root, fmt.Sprintf("d%d", i%5))
		must(os.MkdirAll(dir, 0o755))
		// Append a line to the log.
		f, err := os.OpenFile(log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		must(err)
		fmt.Fprintf(f, "step %d\n", i)
		must(f.Close())
		// Overwrite a block in the middle of a big file.
		big := filepath.Join(root, "big.bin")
		f, err = os.OpenFile(big, os.O_CREATE|os.O_RDWR, 0o644)
		must(err)
		block := make([]byte, 4096)
		for j := range block {
			block[j] = byte(i + j)
		}
		_, err = f.WriteAt(block, int64(i%64)*4096)
		must(err)
		if i%7 == 6 {
			must(f.Truncate(int64(i%64) * 2048))
		}
		must(f.Close())
		// Create, rename and remove small files.
		name := filepath.Join(dir, fmt.Sprintf("f%d", i))
		must(os.WriteFile(name, []byte(fmt.Sprintf("file %d\n", i)), 0o644))
		if i%3 == 0 {
			must(os.Rename(name, name+".renamed"))
		}
		if i >= 4 {
			os.Remove(filepath.Join(root, fmt.Sprintf("d%d", (i-4)%5), fmt.Sprintf("f%d", i-4)))
		}
		if i%11 == 10 {
			must(os.RemoveAll(filepath.Join(root, fmt.Sprintf("d%d", (i+1)%5))))
		}
		// Read back and print a digest of what is there.
		data, err := os.ReadFile(big)
		must(err)
		logData, err := os.ReadFile(log)
		must(err)
		ents, _ := os.ReadDir(dir)
		fmt.Printf("step %d: big %d bytes crc %08x, log %d bytes, %s has %d entries\n",
			i, len(data), crc32.ChecksumIEEE(data), len(logData), filepath.Base(dir), len(ents))
		time.Sleep(20 * time.Millisecond)
	}
}
