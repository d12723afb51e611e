package transport

import (
	"encoding/binary"
	"fmt"
)

// The dialer of a QUIC connection opens its one bidirectional stream and
// writes a hello; the acceptor answers with its own (kind accept) or closes
// the connection with quicCodeDuplicate. Then both ends exchange
// length-prefixed buffers on that stream.
//
//	magic "LHQ" | version u8 | kind u8 | instance u64 | dial sequence u64
//
// instance is random per QUICTransport, so a restarted peer is told from
// a second connection of the same process; the dial sequence orders the
// connections one transport dials. Both are big-endian. The peer's host ID
// is not in the hello: it comes from the peer's verified certificate.
const (
	quicHelloLen     = 21
	quicHelloVersion = 1

	helloDial   = 1
	helloAccept = 2
)

var quicHelloMagic = [3]byte{'L', 'H', 'Q'}

type quicHello struct {
	kind     uint8
	instance uint64
	seq      uint64
}

func (h quicHello) append(dst []byte) []byte {
	dst = append(dst, quicHelloMagic[:]...)
	dst = append(dst, quicHelloVersion, h.kind)
	dst = binary.BigEndian.AppendUint64(dst, h.instance)
	return binary.BigEndian.AppendUint64(dst, h.seq)
}

func decodeHello(b []byte) (quicHello, error) {
	if len(b) != quicHelloLen || [3]byte(b[:3]) != quicHelloMagic {
		return quicHello{}, &protocolError{"not a librahost hello"}
	}
	if b[3] != quicHelloVersion {
		return quicHello{}, &protocolError{fmt.Sprintf("hello of link version %d, want %d", b[3], quicHelloVersion)}
	}
	h := quicHello{
		kind:     b[4],
		instance: binary.BigEndian.Uint64(b[5:]),
		seq:      binary.BigEndian.Uint64(b[13:]),
	}
	if h.kind != helloDial && h.kind != helloAccept {
		return quicHello{}, &protocolError{fmt.Sprintf("hello of unknown kind %d", h.kind)}
	}
	return h, nil
}
