package ckpt

import (
	"encoding/binary"
	"fmt"
	"testing"
	"time"
)

// BenchmarkGC compares the two ways to find dead chunks on a store holding
// 16 workers × 3 epochs of 256 MiB (4096 chunks each, all distinct): the
// reference counts a commit maintains (timed: one incremental commit that
// also drops an epoch) against a full mark-and-sweep over every manifest.
func BenchmarkGC(b *testing.B) {
	s := openTest(b, Config{Path: b.TempDir() + "/gc.db", NoSync: true})
	const keys, chunks = 16, 4096
	cs := s.cfg.ChunkSize
	mem := make([]byte, chunks*cs)
	fill := func(w, e int) {
		for i := range chunks {
			c := mem[i*cs : (i+1)*cs]
			v := uint64(w)<<48 | uint64(e)<<32 | uint64(i) | 1
			if e > 1 && i%100 != 0 {
				v = uint64(w)<<48 | 1<<32 | uint64(i) | 1 // unchanged since epoch 1
			}
			for j := 0; j < 64; j += 8 { // only the head differs: compresses fast
				binary.LittleEndian.PutUint64(c[j:], v)
			}
		}
	}
	epoch := 3
	for w := range keys {
		for e := 1; e <= epoch; e++ {
			fill(w, e)
			capture(b, s, testMeta(Key{Job: "gc", Worker: uint32(w)}, uint64(e)), mem)
		}
	}
	b.Run("refcount-commit", func(b *testing.B) {
		var commit time.Duration
		for i := 0; i < b.N; i++ {
			b.StopTimer()
			epoch++
			fill(0, epoch)
			b.StartTimer()
			p, err := s.Capture(testMeta(Key{Job: "gc"}, uint64(epoch)), mem)
			if err != nil {
				b.Fatal(err)
			}
			if err := p.Wait(); err != nil {
				b.Fatal(err)
			}
			commit += p.Stats().WriteDur
		}
		b.ReportMetric(float64(commit.Microseconds())/1000/float64(b.N), "ms/write")
	})
	b.Run(fmt.Sprintf("mark-and-sweep-%dmanifests", keys*3), func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			if err := s.sweepAll(); err != nil {
				b.Fatal(err)
			}
		}
	})
}
