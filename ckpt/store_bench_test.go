package ckpt

import (
	"bytes"
	"encoding/binary"
	"math/rand/v2"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
	bolt "go.etcd.io/bbolt"
)

// The benchmarks use a 256 MiB memory with the default 64 KiB chunks, from
// one of two generators: genMemory ("mixed": a quarter zero, the rest half
// structured, half random bytes), or genGoHeap (names ending in GoHeap: a
// synthetic image laid out like a Go wasm heap, see heapgen_test.go).
// Durable benchmarks fsync (NoSync off) unless their name says otherwise.
// Besides wall time they report cpu-ms/op, the CPU time of the whole
// process per operation, which a busy machine disturbs less.

const benchMem = 256 << 20

type dataSet int

const (
	mixed dataSet = iota
	goHeap
)

var (
	benchOnce [2]sync.Once
	benchData [2][]byte
)

func benchMemory(b *testing.B, d dataSet) []byte {
	benchOnce[d].Do(func() {
		if d == goHeap {
			benchData[d] = genGoHeap(benchMem, 42)
		} else {
			benchData[d] = genMemory(benchMem, 42)
		}
	})
	return bytes.Clone(benchData[d])
}

// processCPU is the CPU time (user and system) the process has used.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func benchStore(b *testing.B, noSync bool, codec Codec) *Store {
	return openTest(b, Config{Path: filepath.Join(b.TempDir(), "bench.db"), NoSync: noSync, Codec: codec})
}

// nonZeroChunks lists the chunks of mem that are not all zero.
func nonZeroChunks(mem []byte, cs int) []int {
	var out []int
	zero := make([]byte, cs)
	for i := 0; i*cs < len(mem); i++ {
		if !bytes.Equal(mem[i*cs:(i+1)*cs], zero) {
			out = append(out, i)
		}
	}
	return out
}

// touch changes one byte in each listed chunk, so that each gets a new hash.
func touch(mem []byte, cs int, chunks []int, n int) {
	for _, c := range chunks {
		binary.LittleEndian.PutUint32(mem[c*cs:], uint32(n)|1<<31)
	}
}

func pick(chunks []int, frac float64, r *rand.Rand) []int {
	n := max(1, int(float64(len(chunks))*frac))
	perm := r.Perm(len(chunks))[:n]
	out := make([]int, n)
	for i, p := range perm {
		out[i] = chunks[p]
	}
	return out
}

func reportCapture(b *testing.B, pause time.Duration, stored int64, elapsed, cpu time.Duration) {
	n := float64(b.N)
	if cpu > 0 {
		b.ReportMetric(float64(cpu.Microseconds())/1000/n, "cpu-ms/op")
	}
	b.ReportMetric(float64(pause.Microseconds())/1000/n, "ms/pause")
	b.ReportMetric(float64(stored)/n, "stored-B/op")
	if elapsed > 0 {
		b.ReportMetric(float64(benchMem)/1e6/(elapsed.Seconds()/n), "MB/s")
	}
}

// benchCapture runs captures of mem with dirtyFrac of its non-zero chunks
// changed before each. timeWrite includes the background write in the
// timed part (Capture→Wait); otherwise only Capture (the pause) is timed.
func benchCapture(b *testing.B, d dataSet, dirtyFrac float64, timeWrite, noSync bool) {
	benchCaptureCodec(b, d, dirtyFrac, timeWrite, noSync, CodecDefault)
}

func benchCaptureCodec(b *testing.B, d dataSet, dirtyFrac float64, timeWrite, noSync bool, codec Codec) {
	mem := benchMemory(b, d)
	s := benchStore(b, noSync, codec)
	cs := s.cfg.ChunkSize
	nz := nonZeroChunks(mem, cs)
	r := rand.New(rand.NewPCG(1, 2))
	k := Key{Job: "bench"}
	epoch := uint64(0)
	// Warm up: one durable epoch (so incremental runs have a base) and
	// warm copy buffers.
	for range 2 {
		epoch++
		touch(mem, cs, nz, int(epoch))
		capture(b, s, testMeta(k, epoch), mem)
	}
	var pause time.Duration
	var stored int64
	var elapsed, cpu time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		epoch++
		dirty := nz
		if dirtyFrac < 1 {
			dirty = pick(nz, dirtyFrac, r)
		}
		touch(mem, cs, dirty, int(epoch))
		b.StartTimer()
		start, cpu0 := time.Now(), processCPU()
		p, err := s.Capture(testMeta(k, epoch), mem)
		if err != nil {
			b.Fatal(err)
		}
		if !timeWrite {
			b.StopTimer()
		}
		if err := p.Wait(); err != nil {
			b.Fatal(err)
		}
		if timeWrite {
			elapsed += time.Since(start)
			cpu += processCPU() - cpu0
		}
		b.StopTimer()
		st := p.Stats()
		pause += st.PauseDur
		stored += st.BytesStored
		b.StartTimer()
	}
	b.StopTimer()
	reportCapture(b, pause, stored, elapsed, cpu)
}

func BenchmarkCaptureFull256M(b *testing.B)            { benchCapture(b, mixed, 1, false, false) }
func BenchmarkCaptureDirty1pct256M(b *testing.B)       { benchCapture(b, mixed, 0.01, false, false) }
func BenchmarkDurableFull256M(b *testing.B)            { benchCapture(b, mixed, 1, true, false) }
func BenchmarkDurableDirty1pct256M(b *testing.B)       { benchCapture(b, mixed, 0.01, true, false) }
func BenchmarkDurableFull256MNoSync(b *testing.B)      { benchCapture(b, mixed, 1, true, true) }
func BenchmarkDurableDirty1pct256MNoSync(b *testing.B) { benchCapture(b, mixed, 0.01, true, true) }

func BenchmarkCaptureFull256MGoHeap(b *testing.B)       { benchCapture(b, goHeap, 1, false, false) }
func BenchmarkDurableFull256MGoHeap(b *testing.B)       { benchCapture(b, goHeap, 1, true, false) }
func BenchmarkDurableDirty1pct256MGoHeap(b *testing.B)  { benchCapture(b, goHeap, 0.01, true, false) }
func BenchmarkDurableFull256MGoHeapNoSync(b *testing.B) { benchCapture(b, goHeap, 1, true, true) }

// The same with zstd (CodecZstd), the codec of format 1 stores.
func BenchmarkDurableFull256MZstd(b *testing.B) {
	benchCaptureCodec(b, mixed, 1, true, false, CodecZstd)
}
func BenchmarkDurableDirty1pct256MZstd(b *testing.B) {
	benchCaptureCodec(b, mixed, 0.01, true, false, CodecZstd)
}
func BenchmarkDurableFull256MGoHeapZstd(b *testing.B) {
	benchCaptureCodec(b, goHeap, 1, true, false, CodecZstd)
}
func BenchmarkDurableDirty1pct256MGoHeapZstd(b *testing.B) {
	benchCaptureCodec(b, goHeap, 0.01, true, false, CodecZstd)
}

func BenchmarkReadMemory256M(b *testing.B) { benchReadMemory(b, CodecDefault) }

func BenchmarkReadMemory256MZstd(b *testing.B) { benchReadMemory(b, CodecZstd) }

func benchReadMemory(b *testing.B, codec Codec) {
	mem := benchMemory(b, mixed)
	s := benchStore(b, true, codec)
	k := Key{Job: "read"}
	capture(b, s, testMeta(k, 1), mem)
	m, err := s.Manifest(k, 1)
	if err != nil {
		b.Fatal(err)
	}
	dst := make([]byte, len(mem))
	b.SetBytes(int64(len(mem)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := s.ReadMemory(m, dst); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	if !bytes.Equal(dst, mem) {
		b.Fatal("read back differs")
	}
}

// BenchmarkBaselineSingleGoroutine256M is the design's reference point: one
// goroutine hashing with xxh3, compressing with zstd fastest and writing
// every chunk in one bbolt transaction with default options.
func BenchmarkBaselineSingleGoroutine256M(b *testing.B) {
	mem := benchMemory(b, mixed)
	db, err := bolt.Open(filepath.Join(b.TempDir(), "base.db"), 0o600, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	enc, _ := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderConcurrency(1))
	defer enc.Close()
	const cs = 64 << 10
	nz := nonZeroChunks(mem, cs)
	zero := make([]byte, cs)
	var stored int64
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		touch(mem, cs, nz, i+1)
		b.StartTimer()
		err := db.Update(func(tx *bolt.Tx) error {
			bk, err := tx.CreateBucketIfNotExists([]byte("chunks"))
			if err != nil {
				return err
			}
			for off := 0; off < len(mem); off += cs {
				c := mem[off : off+cs]
				if bytes.Equal(c, zero) {
					continue
				}
				h := hashOf(c)
				v := enc.EncodeAll(c, nil)
				stored += int64(len(v))
				if err := bk.Put(h[:], v); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(benchMem)/1e6/(b.Elapsed().Seconds()/float64(b.N)), "MB/s")
	b.ReportMetric(float64(stored)/float64(b.N), "stored-B/op")
}
