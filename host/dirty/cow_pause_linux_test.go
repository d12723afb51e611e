//go:build linux && !race

package dirty

import (
	"encoding/binary"
	"fmt"
	"maps"
	"math/rand/v2"
	"testing"
	"time"
)

// The pause of an incremental copy-on-write capture by memory size: the
// guest (here the benchmark) rewrote a run of 1 % of its memory since the
// last capture; the pause is Collect (what was written, protected again)
// and Freeze. Reported: the pause's two parts per capture, in ns.
func BenchmarkCOWPause(b *testing.B) {
	const chunk = 64 << 10
	for _, size := range []int{256 << 20, 1 << 30, 4 << 30} {
		b.Run(fmt.Sprintf("%dMiB", size>>20), func(b *testing.B) {
			mem, tr := newTestWith(b, size, NewCOW)
			fill(mem, 0, size, 1)
			capture := func() (collect, freeze time.Duration) {
				t0 := time.Now()
				need := make([]bool, size/chunk)
				if err := tr.Collect(uint64(size), func(s, e uint64) {
					for i := s / chunk; i < (e+chunk-1)/chunk; i++ {
						need[i] = true
					}
				}); err != nil {
					b.Fatal(err)
				}
				t1 := time.Now()
				snap, err := tr.Freeze(uint64(size))
				if err != nil {
					b.Fatal(err)
				}
				t2 := time.Now()
				if err := verify(snap, chunk, need, func(int) uint64 { return 1 }); err != nil {
					b.Fatal(err)
				}
				return t1.Sub(t0), t2.Sub(t1)
			}
			capture() // full: armed
			step, off := size/100&^4095, 0
			var collect, freeze time.Duration
			b.ResetTimer()
			for range b.N {
				b.StopTimer()
				fill(mem, off, off+step, 1) // the same bytes: the snapshot stays checkable
				off = (off + step) % (size - step)
				b.StartTimer()
				c, f := capture()
				collect += c
				freeze += f
			}
			b.ReportMetric(float64(collect.Nanoseconds())/float64(b.N), "collect-ns/op")
			b.ReportMetric(float64(freeze.Nanoseconds())/float64(b.N), "freeze-ns/op")
		})
	}
}

// The units a copy-on-write tracker knows it lifted (the lifted bitmap,
// which Collect and the guard read instead of walking the page tables)
// are exactly the ones the page tables show writable: after writes at
// random, with and without a snapshot read while the writes go on; and
// Collect protects them all again.
func TestCOWLifted(t *testing.T) {
	const size = 32 << 20
	const chunk = 64 << 10
	mem, tr := newTestWith(t, size, NewCOW)
	fill(mem, 0, size, 1)
	if err := tr.Collect(size, func(s, e uint64) {}); err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(1, 2))
	write := func(n int) {
		for range n { // phase 1's pattern again: a write all the same
			o := r.IntN(size/8) * 8
			binary.LittleEndian.PutUint64(mem[o:], 1<<40|uint64(o))
		}
	}
	for round := range 12 {
		write(300)
		if round%2 == 1 {
			snap, err := tr.Freeze(size)
			if err != nil {
				t.Fatal(err)
			}
			done := make(chan error)
			go func() { done <- verify(snap, chunk, nil, func(int) uint64 { return 1 }) }()
			write(300)
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			tr.Idle()
		}
		scanned := map[uint64]bool{}
		if err := tr.scan(0, size, false, 0, func(s, e uint64) {
			for u := s / TrackUnit; u*TrackUnit < e; u++ {
				scanned[u] = true
			}
		}); err != nil {
			t.Fatal(err)
		}
		lifted := map[uint64]bool{}
		for w, v := range tr.cow.sh.lifts() {
			for b := range 64 {
				if v&(1<<b) != 0 {
					lifted[uint64(w*64+b)] = true
				}
			}
		}
		if len(scanned) == 0 || !maps.Equal(scanned, lifted) {
			var diff []string
			for u := range scanned {
				if !lifted[u] {
					diff = append(diff, fmt.Sprintf("writable, not known: unit %d (block %d)", u, u*TrackUnit/CopyBlock))
				}
			}
			for u := range lifted {
				if !scanned[u] {
					diff = append(diff, fmt.Sprintf("known, not writable: unit %d (block %d)", u, u*TrackUnit/CopyBlock))
				}
			}
			t.Fatalf("round %d: %d units writable, %d known lifted: %v", round, len(scanned), len(lifted), diff)
		}
		var n uint64
		if err := tr.Collect(size, func(s, e uint64) { n += e - s }); err != nil {
			t.Fatal(err)
		}
		if n != uint64(len(lifted))*TrackUnit {
			t.Fatalf("round %d: Collect reported %d bytes written, %d units lifted", round, n, len(lifted))
		}
		if err := tr.scan(0, size, false, 0, func(s, e uint64) { t.Fatalf("round %d: [%#x, %#x) writable after Collect", round, s, e) }); err != nil {
			t.Fatal(err)
		}
	}
}
