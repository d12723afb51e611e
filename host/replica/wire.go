package replica

import (
	"encoding/binary"
	"fmt"
	"io"

	"github.com/librahost/librahost/ckpt"
)

// Frame types.
const (
	tOffer  = 1
	tNeed   = 2
	tValue  = 3
	tEnd    = 4
	tResult = 5
)

// A RESULT's first byte; a refusal's reason follows it. A source of an
// earlier build takes resultAgain as any refusal.
const (
	resultRefused = 0
	resultOK      = 1
	resultAgain   = 2 // refused only because a chunk it held went meanwhile (ErrAgain)
)

// maxFrame bounds a frame: an offer of a 4 GiB guest lists 65,536 chunks
// (1 MiB) and its manifest carries up to 1 MiB of files inline; a value
// is at most a chunk and its header.
const maxFrame = 64 << 20

// offerVersion is the first byte of an OFFER: a host that speaks
// another version of the protocol is refused in one line.
const offerVersion = 2

type offer struct {
	key      ckpt.Key
	epoch    uint64
	manifest []byte
}

// writeFrame writes a frame in one write (each write to a QUIC stream
// waits for the connection's goroutine).
func writeFrame(w io.Writer, typ byte, body []byte) error {
	b := make([]byte, 5, 5+len(body))
	binary.BigEndian.PutUint32(b, uint32(len(body)+1))
	b[4] = typ
	_, err := w.Write(append(b, body...))
	return err
}

// readFrame reads one frame into buf (grown as needed) and returns its
// type and body.
func readFrame(r io.Reader, buf *[]byte) (byte, []byte, error) {
	var h [5]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return 0, nil, err
	}
	n := binary.BigEndian.Uint32(h[:])
	if n == 0 || n > maxFrame {
		return 0, nil, fmt.Errorf("%w: frame of %d bytes", ErrProtocol, n)
	}
	if cap(*buf) < int(n-1) {
		*buf = make([]byte, n-1)
	}
	b := (*buf)[:n-1]
	if _, err := io.ReadFull(r, b); err != nil {
		return 0, nil, err
	}
	return h[4], b, nil
}

// appendValueFrame appends a VALUE frame: chunk index i and its value.
func appendValueFrame(b []byte, i uint32, v []byte) []byte {
	b = binary.BigEndian.AppendUint32(b, uint32(len(v)+5))
	b = append(b, tValue)
	b = binary.BigEndian.AppendUint32(b, i)
	return append(b, v...)
}

func encodeOffer(o offer) []byte {
	b := []byte{offerVersion}
	b = binary.BigEndian.AppendUint16(b, uint16(len(o.key.Job)))
	b = append(b, o.key.Job...)
	b = binary.BigEndian.AppendUint32(b, o.key.Worker)
	b = binary.BigEndian.AppendUint64(b, o.epoch)
	b = binary.BigEndian.AppendUint32(b, uint32(len(o.manifest)))
	return append(b, o.manifest...)
}

func decodeOffer(b []byte) (offer, error) {
	var o offer
	bad := fmt.Errorf("%w: malformed offer", ErrProtocol)
	if len(b) < 3 {
		return o, bad
	}
	if b[0] != offerVersion {
		return o, fmt.Errorf("%w: offer of protocol version %d, this host speaks version %d (run the same release on every host)", ErrProtocol, b[0], offerVersion)
	}
	n := int(binary.BigEndian.Uint16(b[1:]))
	b = b[3:]
	if len(b) < n+16 {
		return o, bad
	}
	o.key.Job = string(b[:n])
	b = b[n:]
	o.key.Worker = binary.BigEndian.Uint32(b)
	o.epoch = binary.BigEndian.Uint64(b[4:])
	m := uint64(binary.BigEndian.Uint32(b[12:]))
	b = b[16:]
	if uint64(len(b)) != m {
		return o, bad
	}
	o.manifest = b
	return o, nil
}

func encodeIndexes(ix []uint32) []byte {
	b := make([]byte, 0, 4*len(ix))
	for _, i := range ix {
		b = binary.BigEndian.AppendUint32(b, i)
	}
	return b
}

// decodeIndexes reads a NEED: increasing indexes below n.
func decodeIndexes(b []byte, n int) ([]uint32, error) {
	if len(b)%4 != 0 {
		return nil, fmt.Errorf("%w: malformed need", ErrProtocol)
	}
	ix := make([]uint32, len(b)/4)
	for k := range ix {
		ix[k] = binary.BigEndian.Uint32(b[4*k:])
	}
	for k, i := range ix {
		if int(i) >= n || (k > 0 && i <= ix[k-1]) {
			return nil, fmt.Errorf("%w: need names chunk %d of %d", ErrProtocol, i, n)
		}
	}
	return ix, nil
}
