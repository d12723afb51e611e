package ckpt

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
)

func TestDebugZstd(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	rnd := make([]byte, 32<<20)
	fillRandom(rnd, r)
	st := make([]byte, 32<<20)
	fillStructured(st, r)
	for _, opts := range [][]zstd.EOption{
		{zstd.WithEncoderLevel(zstd.SpeedFastest)},
		{zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderCRC(false), zstd.WithSingleSegment(true), zstd.WithWindowSize(64 << 10)},
		{zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithNoEntropyCompression(true)},
		{zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderCRC(false)},
		{zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithLowerEncoderMem(true)},
	} {
		enc, _ := zstd.NewWriter(nil, append(opts, zstd.WithEncoderConcurrency(1))...)
		for name, d := range map[string][]byte{"structured": st} {
			t0 := time.Now()
			n := 0
			var out []byte
			for off := 0; off < len(d); off += 64 << 10 {
				out = enc.EncodeAll(d[off:off+64<<10], out[:0])
				n += len(out)
			}
			el := time.Since(t0)
			t.Logf("%s: %.0f MB/s ratio %.2f", name, float64(len(d))/1e6/el.Seconds(), float64(n)/float64(len(d)))
		}
	}
}
