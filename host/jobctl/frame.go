package jobctl

import (
	"encoding/binary"
	"fmt"
	"io"
)

// Every frame on a control stream is
//
//	length u32 (the rest of the frame) | version u8 | kind u8
//	| inc u64 | seq u64 | ack u64 | job length u8 | job | body
//
// big-endian. inc is the sender's incarnation of the job; seq numbers the
// sender's MSG frames to this peer from 1 (0 on other frames); ack is the
// highest seq of the peer's MSG frames the sender has taken, in order.
// Kinds:
//
//	HELLO  body: the sender's instance u64, random per Endpoint, so that a
//	       restarted peer is told from a redial of the same one; first on
//	       a stream, both ways (the dialer's first)
//	MSG    body: a ckpt.Msg (ckpt.AppendMsg)
//	BEAT   no body: the sender is alive (sent when nothing else was for a
//	       quarter of the failure timeout)
const (
	frameVersion   = 1
	frameHeaderLen = 1 + 1 + 8 + 8 + 8 + 1
	maxFrame       = 8 << 20 // a commit record of a large job fits
	maxJobID       = 255

	kindHello = 1
	kindMsg   = 2
	kindBeat  = 3
)

var kindNames = [...]string{kindHello: "HELLO", kindMsg: "MSG", kindBeat: "BEAT"}

type frame struct {
	kind          uint8
	inc, seq, ack uint64
	job           string
	body          []byte
}

func (f frame) String() string {
	k := fmt.Sprintf("kind %d", f.kind)
	if int(f.kind) < len(kindNames) && kindNames[f.kind] != "" {
		k = kindNames[f.kind]
	}
	return fmt.Sprintf("%s job=%q inc=%d seq=%d ack=%d body=%dB", k, f.job, f.inc, f.seq, f.ack, len(f.body))
}

// appendFrame appends f, with its length, to dst.
func appendFrame(dst []byte, f frame) []byte {
	dst = binary.BigEndian.AppendUint32(dst, uint32(frameHeaderLen+len(f.job)+len(f.body)))
	dst = append(dst, frameVersion, f.kind)
	dst = binary.BigEndian.AppendUint64(dst, f.inc)
	dst = binary.BigEndian.AppendUint64(dst, f.seq)
	dst = binary.BigEndian.AppendUint64(dst, f.ack)
	dst = append(dst, byte(len(f.job)))
	dst = append(dst, f.job...)
	return append(dst, f.body...)
}

// decodeFrame decodes a frame's bytes after its length.
func decodeFrame(b []byte) (frame, error) {
	if len(b) < frameHeaderLen {
		return frame{}, fmt.Errorf("%w: %d bytes, shorter than a header", ErrBadFrame, len(b))
	}
	if b[0] != frameVersion {
		return frame{}, fmt.Errorf("%w: version %d, this build speaks version %d: run one librahost release on every host", ErrBadFrame, b[0], frameVersion)
	}
	f := frame{kind: b[1], inc: binary.BigEndian.Uint64(b[2:]), seq: binary.BigEndian.Uint64(b[10:]),
		ack: binary.BigEndian.Uint64(b[18:])}
	if f.kind < kindHello || f.kind > kindBeat {
		return frame{}, fmt.Errorf("%w: unknown kind %d", ErrBadFrame, f.kind)
	}
	n := int(b[26])
	rest := b[frameHeaderLen:]
	if n > len(rest) {
		return frame{}, fmt.Errorf("%w: job ID past the frame's end", ErrBadFrame)
	}
	f.job, f.body = string(rest[:n]), rest[n:]
	switch {
	case f.kind == kindHello && len(f.body) != 8:
		return frame{}, fmt.Errorf("%w: HELLO of %d bytes, want 8", ErrBadFrame, len(f.body))
	case f.kind == kindBeat && len(f.body) != 0:
		return frame{}, fmt.Errorf("%w: BEAT with %d bytes of body", ErrBadFrame, len(f.body))
	case (f.kind == kindMsg) != (f.seq != 0):
		return frame{}, fmt.Errorf("%w: %s frame with seq %d", ErrBadFrame, kindNames[f.kind], f.seq)
	}
	return f, nil
}

// readFrame reads one frame. A stream that ends between frames gives
// io.EOF; inside one, io.ErrUnexpectedEOF.
func readFrame(r io.Reader) (frame, error) {
	var h [4]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return frame{}, err
	}
	n := binary.BigEndian.Uint32(h[:])
	if n > maxFrame {
		return frame{}, fmt.Errorf("%w: length %d, at most %d", ErrBadFrame, n, maxFrame)
	}
	// Read what comes rather than allocate what the length claims.
	b, err := io.ReadAll(io.LimitReader(r, int64(n)))
	if err != nil {
		return frame{}, err
	}
	if len(b) < int(n) {
		return frame{}, io.ErrUnexpectedEOF
	}
	return decodeFrame(b)
}

func helloBody(instance uint64) []byte { return binary.BigEndian.AppendUint64(nil, instance) }

func helloInstance(f frame) uint64 { return binary.BigEndian.Uint64(f.body) }
