package transport

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"math"
)

// DecodeFrame decodes the frame at the start of b and returns it with the
// number of bytes it occupied. The frame's Payload and Body share b.
//
// On ErrUnknownType the count is still the frame's full length, so a reader
// can skip frames of a newer type; on every other error the count is 0 and
// the rest of b cannot be trusted. DecodeFrame never panics, whatever b
// holds.
func DecodeFrame(b []byte) (Frame, int, error) {
	if len(b) < 4 {
		if len(b) > 0 && b[0] != FrameMagic {
			return Frame{}, 0, fmt.Errorf("%w: bad magic byte 0x%02x", ErrMalformed, b[0])
		}
		return Frame{}, 0, fmt.Errorf("%w: %d bytes, need at least 4", ErrTruncated, len(b))
	}
	if b[0] != FrameMagic {
		return Frame{}, 0, fmt.Errorf("%w: bad magic byte 0x%02x", ErrMalformed, b[0])
	}
	v := b[1]
	if v != FrameVersion && v != frameVersion1 && v != frameVersion2 {
		return Frame{}, 0, fmt.Errorf("%w: version %d, this build speaks %d", ErrVersion, b[1], FrameVersion)
	}
	typ, sum := FrameType(b[2]&typeMask), b[2]&flagChecksum != 0
	n, k := binary.Uvarint(b[3:])
	if k <= 0 {
		if k == 0 {
			return Frame{}, 0, fmt.Errorf("%w: length cut short", ErrTruncated)
		}
		return Frame{}, 0, fmt.Errorf("%w: length overflows", ErrMalformed)
	}
	if n > maxBody {
		return Frame{}, 0, fmt.Errorf("%w: body of %d bytes", ErrTooLarge, n)
	}
	hdr := 3 + k
	end := hdr + int(n)
	total := end
	if sum {
		total += 4
	}
	if total > len(b) {
		return Frame{}, 0, fmt.Errorf("%w: %s frame of %d bytes, %d present", ErrTruncated, typ, total, len(b))
	}
	if sum {
		want := binary.LittleEndian.Uint32(b[end:])
		if got := crc32.Checksum(b[:end], castagnoli); got != want {
			return Frame{}, 0, fmt.Errorf("%w: %s frame, crc %08x, stored %08x", ErrChecksum, typ, got, want)
		}
	}
	f := Frame{Type: typ}
	d := decoder{b: b[hdr:end]}
	switch typ {
	case FrameData:
		f.Src = d.u32("src")
		f.Dst = d.u32("dst")
		f.Seq = d.uvarint("seq")
		f.Epoch = d.uvarint("epoch")
		f.Tag = d.i32("tag")
		if d.err == nil {
			f.Payload = d.b[d.off:len(d.b):len(d.b)]
			d.off = len(d.b)
		}
	case FrameAck:
		f.Src = d.u32("src")
		f.Dst = d.u32("dst")
		f.Cum = d.uvarint("cum")
		if v != frameVersion1 {
			f.Stable = d.uvarint("stable")
		}
		if v != frameVersion1 && v != frameVersion2 {
			f.Cut = d.uvarint("cut")
		}
	case FrameHello:
		f.Version = d.u32("version")
		f.HostID = d.str("host id")
		f.ClusterID = d.str("cluster id")
		f.Job = d.str("job")
		if v != frameVersion1 {
			f.Inc = d.uvarint("incarnation")
		}
	case FrameControl:
		if len(d.b) == 0 {
			d.fail("kind missing")
			break
		}
		f.Kind = d.b[0]
		f.Body = d.b[1:len(d.b):len(d.b)]
		d.off = len(d.b)
	default:
		return Frame{}, total, fmt.Errorf("%w: %d (frame of %d bytes)", ErrUnknownType, uint8(typ), total)
	}
	if d.err == nil && d.off != len(d.b) {
		d.fail(fmt.Sprintf("%d trailing bytes", len(d.b)-d.off))
	}
	if d.err != nil {
		return Frame{}, 0, fmt.Errorf("%w: %s: %s", ErrMalformed, typ, d.err)
	}
	return f, total, nil
}

// DecodeFrames decodes every frame in b, a batch, appending them to dst.
// Frames of unknown type are skipped. It stops at the first error and
// returns the frames decoded before it.
func DecodeFrames(dst []Frame, b []byte) ([]Frame, error) {
	for len(b) > 0 {
		f, n, err := DecodeFrame(b)
		if err != nil && n == 0 {
			return dst, err
		}
		if err == nil {
			dst = append(dst, f)
		}
		b = b[n:]
	}
	return dst, nil
}

// decoder reads fields from one body; the first failure sticks.
type decoder struct {
	b   []byte
	off int
	err error
}

type decodeError string

func (e decodeError) Error() string { return string(e) }

func (d *decoder) fail(msg string) {
	if d.err == nil {
		d.err = decodeError(msg)
	}
}

func (d *decoder) uvarint(name string) uint64 {
	if d.err != nil {
		return 0
	}
	v, k := binary.Uvarint(d.b[d.off:])
	if k <= 0 {
		d.fail("bad " + name)
		return 0
	}
	d.off += k
	return v
}

func (d *decoder) u32(name string) uint32 {
	v := d.uvarint(name)
	if v > math.MaxUint32 {
		d.fail(name + " out of range")
		return 0
	}
	return uint32(v)
}

func (d *decoder) i32(name string) int32 {
	if d.err != nil {
		return 0
	}
	v, k := binary.Varint(d.b[d.off:])
	if k <= 0 {
		d.fail("bad " + name)
		return 0
	}
	d.off += k
	if v < math.MinInt32 || v > math.MaxInt32 {
		d.fail(name + " out of range")
		return 0
	}
	return int32(v)
}

func (d *decoder) str(name string) string {
	n := d.uvarint(name + " length")
	if d.err != nil {
		return ""
	}
	if n > maxString || n > uint64(len(d.b)-d.off) {
		d.fail(name + " length out of range")
		return ""
	}
	s := string(d.b[d.off : d.off+int(n)])
	d.off += int(n)
	return s
}
