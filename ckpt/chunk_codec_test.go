package ckpt

import (
	"bytes"
	"errors"
	"testing"

	"github.com/klauspost/compress/zstd"
	"github.com/zeebo/xxh3"
)

// testCodecs returns a zstd encoder (as a chunkEncoder) and a decoder.
func testCodecs(t testing.TB) (chunkEncoder, *zstd.Decoder) {
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderConcurrency(1))
	if err != nil {
		t.Fatal(err)
	}
	dec, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(maxChunkSize), zstd.WithDecodeAllCapLimit(true))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { enc.Close(); dec.Close() })
	return chunkEncoder{codec: codecZstd, zstd: enc}, dec
}

var s2Encoder = chunkEncoder{codec: codecS2}

func TestChunkCodec(t *testing.T) {
	zenc, dec := testCodecs(t)
	structured := genMemory(4<<10, 1)
	fillStructured(structured, nil2rand())
	tests := []struct {
		name  string
		enc   chunkEncoder
		raw   []byte
		codec byte
	}{
		{"zstd: structured compresses", zenc, structured, codecZstd},
		{"zstd: random stored raw", zenc, randomBytes(4 << 10), codecRaw},
		{"zstd: short last chunk", zenc, randomBytes(100), codecRaw},
		{"s2: structured compresses", s2Encoder, structured, codecS2},
		{"s2: random stored raw", s2Encoder, randomBytes(4 << 10), codecRaw},
		{"s2: short last chunk", s2Encoder, randomBytes(100), codecRaw},
		{"s2: short structured chunk", s2Encoder, structured[:300], codecS2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			buf := append(make([]byte, chunkHeaderLen), tt.raw...)
			v, _ := encodeChunk(tt.enc, buf, nil)
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

// TestChunkCodecS2BadPayload: an S2 payload that passes the checksum but
// is not a valid block, or decodes to the wrong length, is refused.
func TestChunkCodecS2BadPayload(t *testing.T) {
	_, dec := testCodecs(t)
	raw := genMemory(4<<10, 1)
	fillStructured(raw, nil2rand())
	good, _ := encodeChunk(s2Encoder, append(make([]byte, chunkHeaderLen), raw...), nil)
	for _, tt := range []struct {
		name    string
		payload []byte
		rawLen  int
	}{
		{"garbage", []byte{0x80, 0x20, 0xff, 0xff, 0xff}, len(raw)},
		{"short length", good[chunkHeaderLen:], len(raw) - 1},
		{"empty", []byte{0}, 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			v := append(make([]byte, chunkHeaderLen), tt.payload...)
			putChunkHeader(v, chunkHeader{codec: codecS2, rawLen: uint32(tt.rawLen), sum: xxh3.Hash(tt.payload)})
			err := decodeChunk(v, make([]byte, tt.rawLen), hashOf(raw[:tt.rawLen]), dec, nil)
			var de *decodeError
			if !errors.As(err, &de) || de.kind != ErrCorrupt {
				t.Fatalf("err = %v, want a corrupt chunk", err)
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
// pool-sized buffer does not make zstd or S2 grow (reallocate) the buffer.
func TestEncodeIncompressibleInPlace(t *testing.T) {
	zenc, _ := testCodecs(t)
	for _, enc := range []chunkEncoder{zenc, s2Encoder} {
		testEncodeInPlace(t, enc)
	}
}

func testEncodeInPlace(t *testing.T, enc chunkEncoder) {
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
			t.Errorf("codec %d, chunk size %d: %.0f allocations per encode", enc.codec, cs, allocs)
		}
	}
}
