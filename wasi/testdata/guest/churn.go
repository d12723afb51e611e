package main

import (
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"syscall"
	"time"
)

// churn changes the files under args[0] with seeded random operations:
// epochs args[2]+1 .. args[3] of args[4] operations each, seeded by args[1]
// and the epoch, printing "CKPT e" after epoch e. Each epoch's operations
// depend only on the seed and the files at its start, so a run resumed at
// an epoch's start after a rollback continues as an uninterrupted one.
func churn(args []string) {
	dir := args[0]
	seed, _ := strconv.ParseUint(args[1], 10, 64)
	start, _ := strconv.Atoi(args[2])
	end, _ := strconv.Atoi(args[3])
	nops, _ := strconv.Atoi(args[4])
	for e := start + 1; e <= end; e++ {
		rng := rand.New(rand.NewPCG(seed, uint64(e)))
		// A file kept open across the epoch's operations.
		log, err := os.OpenFile(filepath.Join(dir, "log"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
		if err != nil {
			fail(err)
		}
		for i := 0; i < nops; i++ {
			op := churnOp(dir, rng, e, i)
			fmt.Fprintf(log, "%d.%d %s\n", e, i, op)
		}
		log.Close()
		fmt.Printf("CKPT %d\n", e)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "churn:", err)
	os.Exit(1)
}

// tree lists the regular files and directories under dir, sorted.
func tree(dir string) (files, dirs []string) {
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == dir {
			return nil
		}
		rel, _ := filepath.Rel(dir, p)
		switch {
		case d.IsDir():
			dirs = append(dirs, rel)
		case d.Type().IsRegular() && rel != "log":
			files = append(files, rel)
		}
		return nil
	})
	sort.Strings(files)
	sort.Strings(dirs)
	return files, dirs
}

func randBytes(rng *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte('a' + rng.IntN(26))
	}
	return b
}

// churnOp makes one change and describes it.
func churnOp(dir string, rng *rand.Rand, e, i int) string {
	files, dirs := tree(dir)
	pick := func(l []string) string { return l[rng.IntN(len(l))] }
	newName := func() string {
		parent := "."
		if len(dirs) > 0 && rng.IntN(2) == 0 {
			parent = pick(dirs)
		}
		return filepath.Join(parent, fmt.Sprintf("f%d_%d", e, i))
	}
	p := func(rel string) string { return filepath.Join(dir, rel) }
	op := rng.IntN(15)
	if len(files) == 0 {
		op = 3
	}
	switch op {
	case 0, 1, 2: // write at a random offset
		f := pick(files)
		h, err := os.OpenFile(p(f), os.O_RDWR, 0)
		if err != nil {
			return "open " + err.Error()
		}
		defer h.Close()
		fi, _ := h.Stat()
		off := rng.Int64N(fi.Size() + 100)
		h.WriteAt(randBytes(rng, 1+rng.IntN(5000)), off)
		return fmt.Sprintf("write %s@%d", f, off)
	case 3: // create
		n := newName()
		os.WriteFile(p(n), randBytes(rng, rng.IntN(20000)), 0o644)
		return "create " + n
	case 4: // truncate
		f := pick(files)
		fi, err := os.Stat(p(f))
		if err != nil {
			return "stat " + err.Error()
		}
		size := rng.Int64N(fi.Size()*2 + 10)
		os.Truncate(p(f), size)
		return fmt.Sprintf("truncate %s %d", f, size)
	case 5: // remove
		f := pick(files)
		os.Remove(p(f))
		return "remove " + f
	case 6: // rename, maybe over another file
		f, to := pick(files), newName()
		if rng.IntN(2) == 0 {
			to = pick(files)
		}
		os.Rename(p(f), p(to))
		return "rename " + f + " " + to
	case 7: // mkdir
		n := newName() + "d"
		os.Mkdir(p(n), 0o755)
		return "mkdir " + n
	case 8: // remove a directory tree
		if len(dirs) == 0 {
			return "none"
		}
		d := pick(dirs)
		os.RemoveAll(p(d))
		return "removeall " + d
	case 9: // rename a directory
		if len(dirs) == 0 {
			return "none"
		}
		d := pick(dirs)
		to := fmt.Sprintf("d%d_%d", e, i)
		os.Rename(p(d), p(to))
		return "rename dir " + d + " " + to
	case 10: // symbolic link
		n := newName() + "s"
		os.Symlink(pick(files), p(n))
		return "symlink " + n
	case 11: // hard link
		n := newName() + "h"
		os.Link(p(pick(files)), p(n))
		return "link " + n
	case 12: // rewrite with O_TRUNC
		f := pick(files)
		os.WriteFile(p(f), randBytes(rng, rng.IntN(8000)), 0o644)
		return "rewrite " + f
	case 13: // write to a file whose name is then removed
		f := pick(files)
		if fi, err := os.Stat(p(f)); err != nil || fi.Sys().(*syscall.Stat_t).Nlink > 1 {
			return "none"
		}
		h, err := os.OpenFile(p(f), os.O_RDWR, 0)
		if err != nil {
			return "open " + err.Error()
		}
		os.Remove(p(f))
		h.WriteAt(randBytes(rng, 100), 0)
		h.Close()
		return "remove open " + f
	default: // times
		f := pick(files)
		t := time.Unix(int64(1e9+rng.IntN(1e6)), 0)
		os.Chtimes(p(f), t, t)
		return "chtimes " + f
	}
}
