package jobrec

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
)

// Chunk is bytes of one rank's stdout (Stream 1) or stderr (2) that begin
// at Off in that stream.
type Chunk struct {
	Rank   int
	Stream byte
	Off    uint64
	P      []byte
}

// frameHeader: length u32 | crc32c u32 | rank u32 | stream u8 | offset u64.
const frameHeader = 21

// maxFrame bounds the bytes of one frame: a writer's chunks are at most
// 1 MiB.
const maxFrame = 16 << 20

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

func encodeFrame(c Chunk) []byte {
	b := make([]byte, frameHeader, frameHeader+len(c.P))
	binary.BigEndian.PutUint32(b[0:], uint32(len(c.P)))
	binary.BigEndian.PutUint32(b[8:], uint32(c.Rank))
	b[12] = c.Stream
	binary.BigEndian.PutUint64(b[13:], c.Off)
	b = append(b, c.P...)
	binary.BigEndian.PutUint32(b[4:], crc32.Checksum(b[8:], castagnoli))
	return b
}

// frameLen returns the length of the bytes of the frame whose header h
// is (at least frameHeader bytes).
func frameLen(h []byte) (int, error) {
	n := binary.BigEndian.Uint32(h)
	if n > maxFrame {
		return 0, fmt.Errorf("%w: output frame of %d bytes", ErrDamaged, n)
	}
	return int(n), nil
}

// decodeFrame decodes one whole frame.
func decodeFrame(b []byte) (Chunk, error) {
	if len(b) < frameHeader {
		return Chunk{}, fmt.Errorf("%w: short output frame", ErrDamaged)
	}
	n, err := frameLen(b)
	if err != nil {
		return Chunk{}, err
	}
	if len(b) != frameHeader+n {
		return Chunk{}, fmt.Errorf("%w: output frame of %d bytes in %d", ErrDamaged, n, len(b)-frameHeader)
	}
	if crc32.Checksum(b[8:], castagnoli) != binary.BigEndian.Uint32(b[4:]) {
		return Chunk{}, fmt.Errorf("%w: output frame checksum", ErrDamaged)
	}
	c := Chunk{Rank: int(binary.BigEndian.Uint32(b[8:])), Stream: b[12], Off: binary.BigEndian.Uint64(b[13:]), P: b[frameHeader:]}
	if c.Stream != 1 && c.Stream != 2 {
		return Chunk{}, fmt.Errorf("%w: output frame of stream %d", ErrDamaged, c.Stream)
	}
	return c, nil
}
