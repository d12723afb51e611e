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

// maxFrame bounds a frame: an offer of a 4 GiB guest lists 65,536 chunks
// (1 MiB) and its manifest carries up to 1 MiB of files inline; a value
// is at most a chunk and its header.
const maxFrame = 64 << 20

type offer struct {
	key      ckpt.Key
	epoch    uint64
	manifest []byte
	chunks   []ckpt.Hash
}

// writeFrame writes a frame whose body is the parts given, back to back.
func writeFrame(w io.Writer, typ byte, parts ...[]byte) error {
	n := 0
	for _, p := range parts {
		n += len(p)
	}
	var h [5]byte
	binary.BigEndian.PutUint32(h[:], uint32(n+1))
	h[4] = typ
	if _, err := w.Write(h[:]); err != nil {
		return err
	}
	for _, p := range parts {
		if len(p) == 0 {
			continue
		}
		if _, err := w.Write(p); err != nil {
			return err
		}
	}
	return nil
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

func encodeOffer(o offer) []byte {
	b := binary.BigEndian.AppendUint16(nil, uint16(len(o.key.Job)))
	b = append(b, o.key.Job...)
	b = binary.BigEndian.AppendUint32(b, o.key.Worker)
	b = binary.BigEndian.AppendUint64(b, o.epoch)
	b = binary.BigEndian.AppendUint32(b, uint32(len(o.manifest)))
	b = append(b, o.manifest...)
	b = binary.BigEndian.AppendUint32(b, uint32(len(o.chunks)))
	for _, h := range o.chunks {
		b = append(b, h[:]...)
	}
	return b
}

func decodeOffer(b []byte) (offer, error) {
	var o offer
	bad := fmt.Errorf("%w: malformed offer", ErrProtocol)
	if len(b) < 2 {
		return o, bad
	}
	n := int(binary.BigEndian.Uint16(b))
	b = b[2:]
	if len(b) < n+16 {
		return o, bad
	}
	o.key.Job = string(b[:n])
	b = b[n:]
	o.key.Worker = binary.BigEndian.Uint32(b)
	o.epoch = binary.BigEndian.Uint64(b[4:])
	m := uint64(binary.BigEndian.Uint32(b[12:]))
	b = b[16:]
	if uint64(len(b)) < m+4 {
		return o, bad
	}
	o.manifest = b[:m]
	b = b[m:]
	c := uint64(binary.BigEndian.Uint32(b))
	b = b[4:]
	if uint64(len(b)) != c*16 {
		return o, bad
	}
	o.chunks = make([]ckpt.Hash, c)
	for i := range o.chunks {
		copy(o.chunks[i][:], b[i*16:])
	}
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
		if int(ix[k]) >= n || (k > 0 && ix[k] <= ix[k-1]) {
			return nil, fmt.Errorf("%w: need names chunk %d of %d", ErrProtocol, ix[k], n)
		}
	}
	return ix, nil
}
