package ckpt

import (
	"bytes"
	"errors"
	"testing"

	"github.com/klauspost/compress/zstd"
)

func testCodecs(t testing.TB) (*zstd.Encoder, *zstd.Decoder) {
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderConcurrency(1))
	if err != nil {
		t.Fatal(err)
	}
	dec, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(maxChunkSize), zstd.WithDecodeAllCapLimit(true))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { enc.Close(); dec.Close() })
	return enc, dec
}

func TestChunkCodec(t *testing.T) {
	enc, dec := testCodecs(t)
	structured := genMemory(4<<10, 1)
	fillStructured(structured, nil2rand())
	tests := []struct {
		name  string
		raw   []byte
		codec byte
	}{
		{"structured compresses", structured, codecZstd},
		{"random stored raw", randomBytes(4 << 10), codecRaw},
		{"short last chunk", randomBytes(100), codecRaw},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			buf := append(make([]byte, chunkHeaderLen), tt.raw...)
			v, _ := encodeChunk(enc, buf, nil)
			if v[0] != tt.codec {
				t.Fatalf("codec %d, want %d", v[0], tt.codec)
			}
			dst := make([]byte, len(tt.raw))
			if err := decodeChunk(v, dst, hashOf(tt.raw), dec, nil); err != nil || !bytes.Equal(dst, tt.raw) {
				t.Fatalf("decode: %v", err)
			}
			dst = make([]byte, len(tt.raw))
			if err := decodeChunk(v, dst, hashOf(tt.raw), dec, make([]byte, len(tt.raw)+decodeSlack)); err != nil || !bytes.Equal(dst, tt.raw) {
				t.Fatalf("decode through scratch: %v", err)
			}
			// Every single-byte corruption and every truncation is refused.
			for i := range v {
				bad := bytes.Clone(v)
				bad[i] ^= 0x10
				if err := decodeChunk(bad, make([]byte, len(tt.raw)), hashOf(tt.raw), dec, nil); err == nil {
					t.Fatalf("flip of byte %d accepted", i)
				}
			}
			for n := range len(v) {
				err := decodeChunk(v[:n], make([]byte, len(tt.raw)), hashOf(tt.raw), dec, nil)
				var de *decodeError
				if !errors.As(err, &de) {
					t.Fatalf("truncation to %d: %v", n, err)
				}
			}
		})
	}
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	fillRandom(b, nil2rand())
	return b
}

// TestEncodeIncompressibleInPlace: an incompressible chunk encoded into a
// pool-sized buffer does not make zstd grow (reallocate) the buffer.
func TestEncodeIncompressibleInPlace(t *testing.T) {
	enc, _ := testCodecs(t)
	for _, cs := range []int{4 << 10, 64 << 10, 256 << 10} {
		size := chunkHeaderLen + cs + encodeSlack(cs)
		buf := make([]byte, size)
		fillRandom(buf[chunkHeaderLen:chunkHeaderLen+cs], nil2rand())
		buf = buf[:chunkHeaderLen+cs]
		out := make([]byte, size)
		encodeChunk(enc, buf, out) // warm the encoder
		allocs := testing.AllocsPerRun(20, func() {
			if v, usedBuf := encodeChunk(enc, buf, out); !usedBuf || v[0] != codecRaw {
				t.Fatal("random chunk not stored raw")
			}
		})
		if allocs != 0 {
			t.Errorf("chunk size %d: %.0f allocations per encode", cs, allocs)
		}
	}
}
