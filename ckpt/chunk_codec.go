package ckpt

import (
	"encoding/binary"
	"fmt"

	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/zstd"
	"github.com/zeebo/xxh3"
)

// A stored chunk value is a fixed header followed by the payload:
//
//	codec   u8      codecRaw, codecZstd or codecS2
//	rawLen  u32 LE  length of the chunk before compression
//	sum     u64 LE  xxh3-64 of the payload
//	payload
//
// The key of the value is the xxh3-128 of the raw chunk, so a reader checks
// the payload cheaply (sum) and the content fully (key) after decompressing.
const chunkHeaderLen = 13

const (
	codecRaw  = 0
	codecZstd = 1 // zstd frame
	codecS2   = 2 // S2 block (klauspost/compress/s2); written by format 2
)

// Codec chooses how a Store compresses the chunks it writes. Chunks of
// every codec are read whatever the setting.
type Codec int

const (
	// CodecDefault is CodecS2.
	CodecDefault Codec = iota
	// CodecS2 compresses with S2 (an LZ77 without entropy coding): on the
	// benchmark memories 2.5x (Go heap) to 2x (mixed) as fast as zstd's
	// fastest level per core, for 3-20 % larger chunks, and 3x as fast
	// to read back. A full checkpoint of a large guest waits for its
	// compressor, so this is the default.
	CodecS2
	// CodecZstd compresses with zstd's fastest level: the smallest store.
	CodecZstd
)

func (c Codec) String() string {
	switch c {
	case CodecDefault:
		return "default"
	case CodecS2:
		return "s2"
	case CodecZstd:
		return "zstd"
	}
	return "Codec(" + itoa(uint64(c)) + ")"
}

// Hash is the content address of a chunk: the xxh3-128 of its raw bytes,
// high half first. The zero Hash stands for an all-zero chunk.
type Hash [16]byte

func hashOf(b []byte) Hash { return xxh3.Hash128(b).Bytes() }

// IsZero reports whether h stands for an all-zero (elided) chunk.
func (h Hash) IsZero() bool { return h == Hash{} }

func (h Hash) String() string { return fmt.Sprintf("%x", h[:]) }

type chunkHeader struct {
	codec  byte
	rawLen uint32
	sum    uint64
}

func putChunkHeader(dst []byte, h chunkHeader) {
	dst[0] = h.codec
	binary.LittleEndian.PutUint32(dst[1:], h.rawLen)
	binary.LittleEndian.PutUint64(dst[5:], h.sum)
}

// decodeError is a refusal of a stored value before the store knows which
// checkpoint it belongs to; the store wraps it in an *Error.
type decodeError struct {
	kind error
	msg  string
}

func (e *decodeError) Error() string { return e.msg }

func corruptf(format string, args ...any) error {
	return &decodeError{kind: ErrCorrupt, msg: fmt.Sprintf(format, args...)}
}

func truncatedf(format string, args ...any) error {
	return &decodeError{kind: ErrTruncated, msg: fmt.Sprintf(format, args...)}
}

// decodeChunkHeader splits a stored chunk value and checks its payload sum.
// maxRaw bounds rawLen (the manifest's chunk size).
func decodeChunkHeader(v []byte, maxRaw uint32) (chunkHeader, []byte, error) {
	if len(v) < chunkHeaderLen {
		return chunkHeader{}, nil, truncatedf("chunk value truncated (%d bytes)", len(v))
	}
	h := chunkHeader{
		codec:  v[0],
		rawLen: binary.LittleEndian.Uint32(v[1:]),
		sum:    binary.LittleEndian.Uint64(v[5:]),
	}
	payload := v[chunkHeaderLen:]
	switch h.codec {
	case codecRaw:
		if uint32(len(payload)) != h.rawLen {
			if uint32(len(payload)) < h.rawLen {
				return h, nil, truncatedf("chunk value truncated (%d of %d bytes)", len(payload), h.rawLen)
			}
			return h, nil, corruptf("chunk raw length %d but %d bytes stored", h.rawLen, len(payload))
		}
	case codecZstd, codecS2:
	default:
		return h, nil, corruptf("chunk has unknown codec %d", h.codec)
	}
	if h.rawLen > maxRaw {
		return h, nil, corruptf("chunk length %d exceeds chunk size %d", h.rawLen, maxRaw)
	}
	if xxh3.Hash(payload) != h.sum {
		return h, nil, corruptf("chunk checksum mismatch")
	}
	return h, payload, nil
}

// decodeSlack is spare capacity the zstd decoder needs past a block to use
// its fast copy loops.
const decodeSlack = 256

// decodeChunk decompresses a stored value into dst (len(dst) == raw length)
// and checks the content hash against want. scratch, if it has room for
// len(dst)+decodeSlack bytes, lets the decoder run its fast path when dst
// itself has no spare capacity.
func decodeChunk(v []byte, dst []byte, want Hash, dec *zstd.Decoder, scratch []byte) error {
	h, payload, err := decodeChunkHeader(v, uint32(len(dst)))
	if err != nil {
		return err
	}
	if int(h.rawLen) != len(dst) {
		return corruptf("chunk length %d, want %d", h.rawLen, len(dst))
	}
	switch h.codec {
	case codecRaw:
		copy(dst, payload)
	case codecZstd:
		if len(dst) == 0 {
			return corruptf("chunk is empty but compressed")
		}
		into := dst[:0]
		if cap(scratch) >= len(dst)+decodeSlack {
			into = scratch[:0]
		}
		out, err := dec.DecodeAll(payload, into)
		if err != nil {
			return corruptf("chunk does not decompress: %v", err)
		}
		if len(out) != len(dst) || (len(out) > 0 && &out[0] != &into[:1][0]) {
			return corruptf("chunk decompresses to %d bytes, want %d", len(out), len(dst))
		}
		if &into[:1][0] != &dst[:1][0] {
			copy(dst, out)
		}
	case codecS2:
		if n, err := s2.DecodedLen(payload); err != nil || n != len(dst) || n == 0 {
			if err != nil {
				return corruptf("chunk does not decompress: %v", err)
			}
			return corruptf("chunk decompresses to %d bytes, want %d", n, len(dst))
		}
		out, err := s2.Decode(dst, payload)
		if err != nil {
			return corruptf("chunk does not decompress: %v", err)
		}
		if len(out) != len(dst) || &out[0] != &dst[0] {
			return corruptf("chunk decompresses to %d bytes, want %d", len(out), len(dst))
		}
	}
	if hashOf(dst) != want {
		return corruptf("chunk %s content hash mismatch", short(want[:]))
	}
	return nil
}

// encodeSlack is the room past a chunk that zstd may need to emit it as
// raw blocks (frame header, then 3 bytes per block of at most 128 KiB), so
// that encoding an incompressible chunk into a pool buffer never grows it.
// It covers S2's worst case too (a varint length and one literal header).
func encodeSlack(chunkSize int) int {
	return 32 + 3*(chunkSize/(128<<10)+1)
}

// chunkEncoder compresses chunks with one codec; zstd is set for CodecZstd.
type chunkEncoder struct {
	codec byte
	zstd  *zstd.Encoder
}

// encodeChunk compresses raw into a stored value. buf has room for the
// header before raw (raw == buf[chunkHeaderLen:]); when compression does not
// shrink the chunk, buf itself becomes the value and nothing is copied.
// out is a spare buffer the compressed value may be appended to.
func encodeChunk(e chunkEncoder, buf []byte, out []byte) (value []byte, usedBuf bool) {
	raw := buf[chunkHeaderLen:]
	if v, ok := compressChunk(e, raw, out); ok {
		return v, false
	}
	putChunkHeader(buf, chunkHeader{codec: codecRaw, rawLen: uint32(len(raw)), sum: xxh3.Hash(raw)})
	return buf, true
}

// encodeChunkFrom is encodeChunk for a chunk that is read where it is (a
// copy-on-write snapshot): out, a pool buffer with room for the header and
// the whole chunk, holds the value, compressed or not.
func encodeChunkFrom(e chunkEncoder, raw []byte, out []byte) []byte {
	if v, ok := compressChunk(e, raw, out); ok {
		return v
	}
	out = out[:chunkHeaderLen+len(raw)]
	copy(out[chunkHeaderLen:], raw)
	putChunkHeader(out, chunkHeader{codec: codecRaw, rawLen: uint32(len(raw)), sum: xxh3.Hash(raw)})
	return out
}

// compressChunk compresses raw into out as a stored value; ok is false if
// that does not shrink it.
func compressChunk(e chunkEncoder, raw []byte, out []byte) (value []byte, ok bool) {
	out = append(out[:0], make([]byte, chunkHeaderLen)...)
	if e.codec == codecS2 {
		// s2.Encode writes into out's spare capacity when it is at least
		// s2.MaxEncodedLen (pool buffers are); otherwise it allocates.
		payload := s2.Encode(out[chunkHeaderLen:cap(out)], raw)
		if len(payload) > 0 && cap(out) > chunkHeaderLen && &payload[0] == &out[:chunkHeaderLen+1][chunkHeaderLen] {
			out = out[:chunkHeaderLen+len(payload)]
		} else {
			out = append(out, payload...)
		}
	} else {
		out = e.zstd.EncodeAll(raw, out)
	}
	payload := out[chunkHeaderLen:]
	if len(payload) < len(raw) {
		putChunkHeader(out, chunkHeader{codec: e.codec, rawLen: uint32(len(raw)), sum: xxh3.Hash(payload)})
		return out, true
	}
	return out, false
}
