//go:build linux

package dirty

import (
	"runtime"
	"testing"
)

// Tracking turns itself off once more than the limit is written, while
// the program runs, so that a program that writes all its memory faults
// on little more than the limit's worth of pages.
func TestGuard(t *testing.T) {
	const size = 64 << 20
	mem, tr := newPopulated(t, size)
	fault, read := tr.Costs()
	t.Logf("write fault %v, page read %v", fault, read)
	if fault <= 0 || read <= 0 {
		t.Fatalf("costs not measured: fault %v, read %v", fault, read)
	}

	// Below the limit, tracking stays on.
	const limit = 1 << 20
	tr.SetLimit(limit)
	pages(t, tr, size)
	for i := 0; i < limit/2; i += int(pageSize) {
		mem[i]++
	}
	if got := pages(t, tr, size); len(got) != limit/2/int(pageSize) || !tr.Armed() || tr.Tripped() {
		t.Fatalf("below the limit: %d pages, armed %v", len(got), tr.Armed())
	}

	// Above: writes go on until the guard turns tracking off.
	writes := 0
	for i := 0; tr.Armed(); i = (i + int(pageSize)) % size {
		mem[i]++
		writes++
		if writes%1024 == 0 {
			runtime.Gosched()
		}
	}
	if !tr.Tripped() || tr.Tripped() {
		t.Fatal("Tripped: want true once")
	}
	t.Logf("tracking went off after %d page writes", writes)
	// Off: the next Collect reports everything and arms again.
	if got := pages(t, tr, size); len(got) != size/int(pageSize) || !tr.Armed() {
		t.Fatalf("after the guard: %d pages, armed %v", len(got), tr.Armed())
	}
	mem[5*pageSize]++
	if got := pages(t, tr, size); len(got) != 1 || got[0] != 5 {
		t.Fatalf("armed again: %v", got)
	}
}
