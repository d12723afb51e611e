//go:build linux

package dirty

import (
	"errors"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// newTest maps size bytes as the host's allocator does and tracks them.
// A kernel older than 6.7 lacks the features: the test is then not run.
func newTest(t *testing.T, size int) ([]byte, *Tracker) {
	t.Helper()
	return newTestWith(t, size, New)
}

// newTestWith is newTest with the tracker that open makes.
func newTestWith(t testing.TB, size int, open func([]byte) (*Tracker, error)) ([]byte, *Tracker) {
	t.Helper()
	mem, err := unix.Mmap(-1, 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS|unix.MAP_NORESERVE)
	if err != nil {
		t.Fatal(err)
	}
	_ = unix.Madvise(mem, unix.MADV_HUGEPAGE)
	tr, err := open(mem)
	if errors.Is(err, ErrUnsupported) && kernelBefore(6, 7) {
		unix.Munmap(mem)
		t.Skipf("kernel older than 6.7: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		tr.Close()
		unix.Munmap(mem)
	})
	return mem, tr
}

func kernelBefore(major, minor int) bool {
	var u unix.Utsname
	if unix.Uname(&u) != nil {
		return false
	}
	f := strings.FieldsFunc(unix.ByteSliceToString(u.Release[:]), func(r rune) bool { return r < '0' || r > '9' })
	if len(f) < 2 {
		return false
	}
	ma, _ := strconv.Atoi(f[0])
	mi, _ := strconv.Atoi(f[1])
	return ma < major || ma == major && mi < minor
}

// pages returns the pages that Collect reports, by index.
func pages(t *testing.T, tr *Tracker, size int) []int {
	t.Helper()
	var got []int
	last := uint64(0)
	err := tr.Collect(uint64(size), func(start, end uint64) {
		if start%pageSize != 0 || end%pageSize != 0 || start >= end || start < last {
			t.Fatalf("range [%#x, %#x) after %#x", start, end, last)
		}
		last = end
		for p := start; p < end; p += pageSize {
			got = append(got, int(p/pageSize))
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	return got
}

var pageSize = uint64(os.Getpagesize())

func span(lo, hi int) []int {
	var s []int
	for p := lo; p < hi; p++ {
		s = append(s, p)
	}
	return s
}

func TestCollect(t *testing.T) {
	const limit, size = 64 << 20, 16 << 20
	mem, tr := newTest(t, limit)
	ps := int(pageSize)
	for i := 0; i < size/2; i += ps { // half populated, half never touched
		mem[i] = 1
	}
	if tr.Armed() {
		t.Fatal("armed before the first Collect")
	}
	if got := pages(t, tr, size); !slices.Equal(got, span(0, size/ps)) {
		t.Fatalf("first Collect: %d pages, want all %d", len(got), size/ps)
	}
	if got := pages(t, tr, size); len(got) != 0 {
		t.Fatalf("nothing written, %d pages reported", len(got))
	}

	// Writes by Go code to populated and to untouched pages, and by the
	// kernel (read(2) from a pipe into the mapping).
	want := []int{3, 4, 700, size/2/ps + 5, size/ps - 1}
	mem[3*ps+17] = 2
	mem[4*ps] = 2
	mem[700*ps+ps-1] = 2
	mem[(size/2/ps+5)*ps] = 2
	var fds [2]int
	if err := unix.Pipe(fds[:]); err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fds[0])
	defer unix.Close(fds[1])
	if _, err := unix.Write(fds[1], []byte("kernel")); err != nil {
		t.Fatal(err)
	}
	if n, err := unix.Read(fds[0], mem[size-3:size]); n != 3 || err != nil {
		t.Fatalf("read: %d %v", n, err)
	}
	if got := pages(t, tr, size); !slices.Equal(got, want) {
		t.Fatalf("written pages %v, want %v", got, want)
	}

	// Memory that grew counts as written, once.
	mem[5*ps] = 3
	if got := pages(t, tr, size+3*ps); !slices.Equal(got, append([]int{5}, span(size/ps, size/ps+3)...)) {
		t.Fatalf("after growth: %v", got)
	}
	if got := pages(t, tr, size+3*ps); len(got) != 0 {
		t.Fatalf("after growth, nothing written, %d pages reported", len(got))
	}

	// Disarmed, nothing is tracked: the next Collect reports everything.
	if err := tr.Disarm(); err != nil {
		t.Fatal(err)
	}
	if tr.Armed() {
		t.Fatal("armed after Disarm")
	}
	mem[9*ps] = 4
	if got := pages(t, tr, size); !slices.Equal(got, span(0, size/ps)) {
		t.Fatalf("after Disarm: %d pages, want all %d", len(got), size/ps)
	}
	mem[11*ps] = 4
	if got := pages(t, tr, size); !slices.Equal(got, []int{11}) {
		t.Fatalf("armed again: %v", got)
	}
}

// Rounds of random writes: Collect reports exactly the pages written.
func TestCollectRandom(t *testing.T) {
	const size = 32 << 20
	mem, tr := newTest(t, size)
	pages(t, tr, size)
	r := rand.New(rand.NewPCG(1, 2))
	n := size / int(pageSize)
	for round := range 20 {
		written := map[int]bool{}
		for range r.IntN(2000) {
			p := r.IntN(n)
			if r.IntN(4) == 0 { // runs of pages
				for q := p; q < min(n, p+r.IntN(40)); q++ {
					mem[q*int(pageSize)+r.IntN(int(pageSize))]++
					written[q] = true
				}
				continue
			}
			mem[p*int(pageSize)+r.IntN(int(pageSize))]++
			written[p] = true
		}
		want := make([]int, 0, len(written))
		for p := range written {
			want = append(want, p)
		}
		slices.Sort(want)
		if got := pages(t, tr, size); !slices.Equal(got, want) {
			t.Fatalf("round %d: %d pages reported, %d written", round, len(got), len(want))
		}
	}
}
