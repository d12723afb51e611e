package ckpt

import (
	"testing"
	"time"
)

// benchFrozen runs full copy-on-write captures of mem (a snapshot whose
// chunks are all copied already, so that only the store is timed), from
// Capture until durable. It reports, besides reportCapture's, the part of
// that time after the scan (how much of the writing did not overlap the
// scan) and the pool's size at the end (the most buffers out at once).
func benchFrozen(b *testing.B, d dataSet) {
	mem := benchMemory(b, d)
	s := benchStore(b, false, CodecDefault)
	cs := s.cfg.ChunkSize
	nz := nonZeroChunks(mem, cs)
	n := int(chunkCount(uint64(len(mem)), cs))
	k := Key{Job: "bench"}
	epoch := uint64(0)
	captureFrozen := func() *Pending {
		epoch++
		touch(mem, cs, nz, int(epoch))
		f := newFrozenMem(mem, n)
		for i := range n {
			f.copyChunk(i)
		}
		meta := testMeta(k, epoch)
		meta.Dirty = &Dirty{Mark: epoch, Frozen: f}
		p, err := s.Capture(meta, mem)
		if err != nil {
			b.Fatal(err)
		}
		return p
	}
	for range 2 { // warm up: the pool's buffers
		if err := captureFrozen().Wait(); err != nil {
			b.Fatal(err)
		}
	}
	var pause time.Duration
	var stored int64
	var elapsed, cpu, after time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		start, cpu0 := time.Now(), processCPU()
		p := captureFrozen()
		scanned := make(chan time.Time, 1)
		go func() {
			<-p.scanned
			scanned <- time.Now()
		}()
		if err := p.Wait(); err != nil {
			b.Fatal(err)
		}
		after += time.Since(<-scanned)
		elapsed += time.Since(start)
		cpu += processCPU() - cpu0
		st := p.Stats()
		pause += st.PauseDur
		stored += st.BytesStored
	}
	b.StopTimer()
	reportCapture(b, pause, stored, elapsed, cpu)
	b.ReportMetric(after.Seconds()*1e3/float64(b.N), "ms-after-scan/op")
	b.ReportMetric(after.Seconds()/elapsed.Seconds(), "after-scan/total")
	// Every buffer is back: the pool holds as many as were ever out at
	// once (below its cap), the scan's and the values'.
	s.bufs.mu.Lock()
	pool := len(s.bufs.free) * s.bufs.size
	s.bufs.mu.Unlock()
	b.ReportMetric(float64(pool)/(1<<20), "MiB-pool")
}

func BenchmarkDurableFrozenFull256M(b *testing.B)       { benchFrozen(b, mixed) }
func BenchmarkDurableFrozenFull256MGoHeap(b *testing.B) { benchFrozen(b, goHeap) }
