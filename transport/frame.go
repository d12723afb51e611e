package transport

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
)

// Frame format, version 3. Every frame is
//
//	magic    1 byte  0x4C ('L')
//	version  1 byte  FrameVersion
//	type     1 byte  FrameType in the low 7 bits; 0x80 = checksum follows
//	length   uvarint length N of the body
//	body     N bytes, by type (below)
//	checksum 4 bytes CRC-32C (Castagnoli, little-endian) of everything
//	         from magic to the end of the body; present only with 0x80
//
// Bodies (uvarint unless said otherwise; tag is a zig-zag varint):
//
//	DATA     src dst seq epoch tag, then the payload: the rest of the body
//	ACK      src dst cum stable cut
//	HELLO    version, then hostID clusterID job, each uvarint length + bytes,
//	         then incarnation
//	CONTROL  kind (1 byte), then the body: the rest of the body
//
// Version 1 lacked ACK's stable and HELLO's incarnation, version 2 ACK's
// cut. Their frames still decode (those fields 0, which claim nothing), so
// a peer of an old format is refused by the HELLO check in one line
// ("speaks version 2") rather than as garbage.
//
// The payload is length-prefixed by the frame's own length, so frames are
// self-delimiting and many can share one buffer: a batch is simply frames
// back to back. A DATA frame costs 3 bytes of header, 1 to 3 of length and
// usually 5 to 12 of fields.
//
// The checksum is optional because both drivers already guarantee
// integrity: QUIC seals every packet with an AEAD under TLS 1.3, and the
// in-process pipe does not touch the bytes. A CRC over every frame would
// only cost time on the hot path. It exists for links that lack such
// protection (a plain stream, a file of captured traffic): AppendFrameSum
// writes it and DecodeFrame checks it whenever present.

// Frame header constants.
const (
	FrameMagic   = 0x4C
	FrameVersion = 3
	// frameVersion1 and frameVersion2 are earlier formats, still decoded.
	frameVersion1 = 1
	frameVersion2 = 2

	flagChecksum = 0x80
	typeMask     = 0x7f

	// MaxPayload bounds a DATA payload or CONTROL body: larger frames are
	// refused by both encoder callers and the decoder.
	MaxPayload = 64 << 20
	// maxBody is MaxPayload plus room for the fixed fields.
	maxBody = MaxPayload + 64
	// maxString bounds each HELLO string.
	maxString = 1024
)

// FrameType says what a frame carries.
type FrameType uint8

// Frame types.
const (
	FrameData    FrameType = 1 // a guest message on channel Src→Dst
	FrameAck     FrameType = 2 // cumulative ack (and stability) for channel Src→Dst
	FrameHello   FrameType = 3 // first frame on a link
	FrameControl FrameType = 4 // opaque, for the checkpoint coordinator
)

func (t FrameType) String() string {
	switch t {
	case FrameData:
		return "DATA"
	case FrameAck:
		return "ACK"
	case FrameHello:
		return "HELLO"
	case FrameControl:
		return "CONTROL"
	}
	return fmt.Sprintf("type(%d)", uint8(t))
}

// Frame is one decoded frame. Which fields count depends on Type:
//
//	DATA     Src Dst Seq Epoch Tag Payload
//	ACK      Src Dst Cum (every message with Seq ≤ Cum was received)
//	         Stable (every message with Seq ≤ Stable is covered by a
//	         committed checkpoint of the receiver: the sender may drop it)
//	HELLO    Version HostID ClusterID Job Inc
//	CONTROL  Kind Body
//
// A frame returned by DecodeFrame shares Payload and Body with the decoded
// buffer.
type Frame struct {
	Type     FrameType
	Kind     uint8 // CONTROL
	Tag      int32 // DATA
	Src, Dst uint32
	Version  uint32 // HELLO
	Seq      uint64 // DATA
	Epoch    uint64 // DATA
	Cum      uint64 // ACK
	Stable   uint64 // ACK
	// Cut (ACK) says that every Seq ≤ Cum is in the receiver's cut of
	// every epoch from Cut on: the receiver was in epoch Cut-1 when it
	// had them all. 0 claims nothing.
	Cut     uint64
	Inc     uint64 // HELLO: the sender's incarnation of the job
	Payload []byte // DATA
	Body    []byte // CONTROL

	HostID, ClusterID, Job string // HELLO
}

func (f *Frame) String() string {
	switch f.Type {
	case FrameData:
		return fmt.Sprintf("DATA %d->%d seq=%d epoch=%d tag=%d %q", f.Src, f.Dst, f.Seq, f.Epoch, f.Tag, f.Payload)
	case FrameAck:
		s := fmt.Sprintf("ACK %d->%d cum=%d", f.Src, f.Dst, f.Cum)
		if f.Stable > 0 {
			s += fmt.Sprintf(" stable=%d", f.Stable)
		}
		if f.Cut > 0 {
			s += fmt.Sprintf(" cut=%d", f.Cut)
		}
		return s
	case FrameHello:
		return fmt.Sprintf("HELLO v%d host=%q cluster=%q job=%q inc=%d", f.Version, f.HostID, f.ClusterID, f.Job, f.Inc)
	case FrameControl:
		return fmt.Sprintf("CONTROL kind=%d %q", f.Kind, f.Body)
	}
	return f.Type.String()
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// AppendFrame appends the encoding of f, without checksum, to dst and
// returns the extended buffer. Fields that do not belong to f.Type are
// ignored. It panics on an unknown type, a payload above MaxPayload or a
// HELLO string longer than 1024 bytes: those are caller bugs, never peer
// input.
func AppendFrame(dst []byte, f *Frame) []byte {
	return appendFrame(dst, f, false)
}

// AppendFrameSum is AppendFrame followed by a CRC-32C checksum.
func AppendFrameSum(dst []byte, f *Frame) []byte {
	return appendFrame(dst, f, true)
}

func appendFrame(dst []byte, f *Frame, sum bool) []byte {
	start := len(dst)
	n := bodyLen(f)
	typ := byte(f.Type)
	if sum {
		typ |= flagChecksum
	}
	dst = append(dst, FrameMagic, FrameVersion, typ)
	dst = binary.AppendUvarint(dst, uint64(n))
	switch f.Type {
	case FrameData:
		dst = binary.AppendUvarint(dst, uint64(f.Src))
		dst = binary.AppendUvarint(dst, uint64(f.Dst))
		dst = binary.AppendUvarint(dst, f.Seq)
		dst = binary.AppendUvarint(dst, f.Epoch)
		dst = binary.AppendVarint(dst, int64(f.Tag))
		dst = append(dst, f.Payload...)
	case FrameAck:
		dst = binary.AppendUvarint(dst, uint64(f.Src))
		dst = binary.AppendUvarint(dst, uint64(f.Dst))
		dst = binary.AppendUvarint(dst, f.Cum)
		dst = binary.AppendUvarint(dst, f.Stable)
		dst = binary.AppendUvarint(dst, f.Cut)
	case FrameHello:
		dst = binary.AppendUvarint(dst, uint64(f.Version))
		for _, s := range [...]string{f.HostID, f.ClusterID, f.Job} {
			dst = binary.AppendUvarint(dst, uint64(len(s)))
			dst = append(dst, s...)
		}
		dst = binary.AppendUvarint(dst, f.Inc)
	case FrameControl:
		dst = append(dst, f.Kind)
		dst = append(dst, f.Body...)
	}
	if sum {
		dst = binary.LittleEndian.AppendUint32(dst, crc32.Checksum(dst[start:], castagnoli))
	}
	return dst
}

// bodyLen is the encoded body length of f.
func bodyLen(f *Frame) int {
	switch f.Type {
	case FrameData:
		if len(f.Payload) > MaxPayload {
			panic("transport: DATA payload above MaxPayload")
		}
		return uvarintLen(uint64(f.Src)) + uvarintLen(uint64(f.Dst)) + uvarintLen(f.Seq) +
			uvarintLen(f.Epoch) + varintLen(int64(f.Tag)) + len(f.Payload)
	case FrameAck:
		return uvarintLen(uint64(f.Src)) + uvarintLen(uint64(f.Dst)) + uvarintLen(f.Cum) + uvarintLen(f.Stable) + uvarintLen(f.Cut)
	case FrameHello:
		n := uvarintLen(uint64(f.Version)) + uvarintLen(f.Inc)
		for _, s := range [...]string{f.HostID, f.ClusterID, f.Job} {
			if len(s) > maxString {
				panic("transport: HELLO string above 1024 bytes")
			}
			n += uvarintLen(uint64(len(s))) + len(s)
		}
		return n
	case FrameControl:
		if len(f.Body) > MaxPayload {
			panic("transport: CONTROL body above MaxPayload")
		}
		return 1 + len(f.Body)
	}
	panic(fmt.Sprintf("transport: cannot encode frame %s", f.Type))
}

func uvarintLen(v uint64) int {
	n := 1
	for v >= 0x80 {
		v >>= 7
		n++
	}
	return n
}

func varintLen(v int64) int {
	u := uint64(v) << 1
	if v < 0 {
		u = ^u
	}
	return uvarintLen(u)
}
