package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// files runs file operations under the directory args[0] and prints what
// it sees, one line per step.
func files(args []string) {
	dir := args[0]
	p := func(name string) string { return filepath.Join(dir, name) }
	check := func(step string, err error) {
		if err != nil {
			fmt.Printf("%s: error: %v\n", step, err)
		} else {
			fmt.Printf("%s: ok\n", step)
		}
	}
	check("write", os.WriteFile(p("a.txt"), []byte("hello"), 0o644))
	f, err := os.OpenFile(p("a.txt"), os.O_APPEND|os.O_WRONLY, 0)
	check("open append", err)
	if err == nil {
		_, err = f.WriteString(" world")
		check("append", err)
		f.Close()
	}
	b, err := os.ReadFile(p("a.txt"))
	fmt.Printf("read: %q %v\n", b, err)

	f, err = os.OpenFile(p("a.txt"), os.O_RDWR, 0)
	check("open rw", err)
	if err == nil {
		off, err := f.Seek(6, io.SeekStart)
		fmt.Printf("seek: %d %v\n", off, err)
		f.WriteString("WORLD")
		f.Seek(0, io.SeekStart)
		b, _ := io.ReadAll(f)
		fmt.Printf("reread: %q\n", b)
		check("truncate", f.Truncate(5))
		fi, err := f.Stat()
		fmt.Printf("stat: size=%d dir=%v %v\n", fi.Size(), fi.IsDir(), err)
		f.Close()
	}

	check("mkdir", os.Mkdir(p("sub"), 0o755))
	check("mkdirall", os.MkdirAll(p("sub/x/y"), 0o755))
	check("mkdir exists", os.Mkdir(p("sub"), 0o755))
	check("rename", os.Rename(p("a.txt"), p("sub/b.txt")))
	_, err = os.Stat(p("a.txt"))
	fmt.Printf("stat old: notexist=%v\n", errors.Is(err, fs.ErrNotExist))
	check("symlink", os.Symlink("b.txt", p("sub/link")))
	// An absolute target is refused; the host made abslink before the run,
	// and links already in a mount may be absolute.
	check("symlink abs", os.Symlink(p("sub/b.txt"), p("abslink2")))
	t, err := os.Readlink(p("sub/link"))
	fmt.Printf("readlink: %q %v\n", t, err)
	b, err = os.ReadFile(p("sub/link"))
	fmt.Printf("read via link: %q %v\n", b, err)
	b, err = os.ReadFile(p("abslink"))
	fmt.Printf("read via abs link: %q %v\n", b, err)
	fi, err := os.Lstat(p("sub/link"))
	fmt.Printf("lstat link: symlink=%v %v\n", err == nil && fi.Mode()&fs.ModeSymlink != 0, err)
	check("escape link", os.Symlink("../../../../../../etc/passwd", p("evil")))
	_, err = os.ReadFile(p("evil"))
	fmt.Printf("read escape: failed=%v\n", err != nil)
	_, err = os.ReadFile(p("../../../../etc/passwd"))
	fmt.Printf("read dotdot: failed=%v\n", err != nil)

	for i := 0; i < 30; i++ {
		os.WriteFile(p(fmt.Sprintf("sub/x/f%02d", i)), nil, 0o644)
	}
	ents, err := os.ReadDir(p("sub/x"))
	names := []string{}
	for _, e := range ents {
		names = append(names, e.Name())
	}
	fmt.Printf("readdir: %d %s %v\n", len(ents), strings.Join(names[:3], ","), err)
	ents, err = os.ReadDir(p("sub"))
	names = names[:0]
	for _, e := range ents {
		names = append(names, fmt.Sprintf("%s:%v", e.Name(), e.Type()))
	}
	sort.Strings(names)
	fmt.Printf("readdir sub: %s %v\n", strings.Join(names, " "), err)
	check("chtimes", os.Chtimes(p("abslink"), fixedTime, fixedTime))
	fi, err = os.Stat(p("sub/b.txt"))
	fmt.Printf("mtime: %v %v\n", err == nil && fi.ModTime().Equal(fixedTime), err)
	check("link", os.Link(p("sub/b.txt"), p("hard.txt")))
	check("remove file", os.Remove(p("hard.txt")))
	check("remove nonempty", os.Remove(p("sub/x")))
	check("removeall", os.RemoveAll(p("sub")))
	_, err = os.Stat(p("sub"))
	fmt.Printf("gone: %v\n", errors.Is(err, fs.ErrNotExist))
	check("write ro", os.WriteFile("/ro/new.txt", []byte("x"), 0o644))
	b, err = os.ReadFile("/ro/hello.txt")
	fmt.Printf("read ro: %q %v\n", b, err)
}
