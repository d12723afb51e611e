//go:build linux

package dirty

import (
	"bufio"
	"os"
	"strconv"
	"strings"
	"testing"
	"unsafe"
)

// A probe protects a sample of the memory, not all of it, and reports
// how much of the sample was written.
func TestProbe(t *testing.T) {
	const size = 64 << 20
	mem, tr := newPopulated(t, size)
	probe := func() (protected uint64) {
		t.Helper()
		before := tr.Protected()
		if err := tr.StartProbe(size); err != nil {
			t.Fatal(err)
		}
		if tr.Armed() {
			t.Fatal("a probe armed the tracker")
		}
		return tr.Protected() - before
	}
	end := func() (written, sampled uint64) {
		t.Helper()
		w, s, err := tr.EndProbe()
		if err != nil {
			t.Fatal(err)
		}
		return w, s
	}

	// Nothing written.
	p := probe()
	if p < ProbeMin*ProbeBlock/2 || p > size/4 {
		t.Fatalf("a probe of %d MiB protected %d bytes", size>>20, p)
	}
	if w, s := end(); w != 0 || s != p {
		t.Fatalf("nothing written: %d of %d sampled bytes reported written, %d protected", w, s, p)
	}

	// Everything written, by Go code and by the kernel.
	p = probe()
	for i := 0; i < size; i += int(pageSize) {
		mem[i]++
	}
	if w, s := end(); w != s || s != p {
		t.Fatalf("everything written: %d of %d sampled bytes reported written, %d protected", w, s, p)
	}

	// Unprotected again: writes after the probe are not seen by the next.
	p = probe()
	if w, _ := end(); w != 0 {
		t.Fatalf("writes before the probe reported: %d bytes", w)
	}
	for i := 0; i < size; i += int(pageSize) {
		mem[i]++
	}
	probe()
	if w, _ := end(); w != 0 {
		t.Fatalf("writes between probes reported: %d bytes", w)
	}

	// Arming covers a running probe, which then reports nothing.
	probe()
	if got := pages(t, tr, size); len(got) != size/int(pageSize) {
		t.Fatalf("first Collect after probes: %d pages, want all", len(got))
	}
	if w, s := end(); w != 0 || s != 0 {
		t.Fatalf("probe after arming: %d of %d", w, s)
	}
	before := tr.Protected()
	if err := tr.StartProbe(size); err != nil || tr.Protected() != before {
		t.Fatalf("StartProbe while armed: %v, %d bytes protected", err, tr.Protected()-before)
	}
	if w, s := end(); s != 0 || w != 0 {
		t.Fatalf("a probe ran while armed: %d of %d", w, s)
	}
	mem[7*pageSize] = 9
	if got := pages(t, tr, size); len(got) != 1 || got[0] != 7 {
		t.Fatalf("armed after probes: %v", got)
	}
}

// Tracking splits the huge pages it sees written; they are huge again once
// tracking stops (Disarm, EndProbe). Split memory stays slow to use.
func TestHugePagesRestored(t *testing.T) {
	const size = 64 << 20
	mem, tr := newPopulated(t, size)
	huge := hugeBytes(t, mem)
	if huge == 0 || thpNever() {
		t.Skip("no transparent huge pages on this system")
	}
	writeAll := func() {
		for i := 0; i < size; i += int(pageSize) {
			mem[i]++
		}
	}

	pages(t, tr, size) // protects everything
	writeAll()
	if h := hugeBytes(t, mem); h != 0 {
		t.Logf("written while protected: %d MiB huge of %d", h>>20, huge>>20)
	}
	pages(t, tr, size)
	if err := tr.Disarm(); err != nil {
		t.Fatal(err)
	}
	tr.waitHuge() // collapsed off the caller's time
	if h := hugeBytes(t, mem); h != huge {
		t.Fatalf("after Disarm: %d MiB of huge pages, %d before tracking", h>>20, huge>>20)
	}

	if err := tr.StartProbe(size); err != nil {
		t.Fatal(err)
	}
	writeAll()
	t.Logf("written during a probe: %d MiB huge of %d", hugeBytes(t, mem)>>20, huge>>20)
	if w, s, err := tr.EndProbe(); err != nil || w != s {
		t.Fatalf("EndProbe: %d of %d written, %v", w, s, err)
	}
	tr.waitHuge()
	if h := hugeBytes(t, mem); h != huge {
		t.Fatalf("after EndProbe: %d MiB of huge pages, %d before", h>>20, huge>>20)
	}
}

// newPopulated is newTest with every page of the memory written.
func newPopulated(t *testing.T, size int) ([]byte, *Tracker) {
	mem, tr := newTest(t, size)
	for i := 0; i < size; i += int(pageSize) {
		mem[i] = 1
	}
	return mem, tr
}

// hugeBytes returns the bytes of huge pages in the mapping that holds mem
// (the tracker's registration makes it a mapping of its own).
func hugeBytes(t *testing.T, mem []byte) uint64 {
	t.Helper()
	addr := uint64(uintptr(unsafe.Pointer(unsafe.SliceData(mem))))
	f, err := os.Open("/proc/self/smaps")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	in := false
	for sc.Scan() {
		line := sc.Text()
		if r, _, ok := strings.Cut(line, " "); ok {
			if lo, hi, ok := strings.Cut(r, "-"); ok {
				l, err1 := strconv.ParseUint(lo, 16, 64)
				h, err2 := strconv.ParseUint(hi, 16, 64)
				if err1 == nil && err2 == nil {
					in = l <= addr && addr < h
					continue
				}
			}
		}
		if in && strings.HasPrefix(line, "AnonHugePages:") {
			kb, err := strconv.ParseUint(strings.Fields(line)[1], 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return kb << 10
		}
	}
	t.Fatal("mapping not found in /proc/self/smaps")
	return 0
}
