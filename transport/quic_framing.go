package transport

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
)

// On a QUIC link's stream every buffer travels as a 4-byte big-endian length
// followed by that many bytes. A length of zero or above the reader's
// maximum is a protocol violation.
const (
	quicLenSize = 4
	// quicReadChunk bounds what the reader allocates ahead of the bytes
	// that actually arrived, so a peer that announces a huge buffer and
	// then stalls costs little memory.
	quicReadChunk = 1 << 20
	// quicDirectRead: payload reads at least this large bypass the
	// stream's read buffer.
	quicDirectRead = 32 << 10
)

// appendBufferHeader appends the length prefix of a buffer of n bytes.
func appendBufferHeader(dst []byte, n int) []byte {
	return binary.BigEndian.AppendUint32(dst, uint32(n))
}

// bufferReader decodes length-prefixed buffers from a stream.
type bufferReader struct {
	src io.Reader
	r   *bufio.Reader
	max int
	hdr [quicLenSize]byte
}

func newBufferReader(r io.Reader, size, max int) *bufferReader {
	return &bufferReader{src: r, r: bufio.NewReaderSize(r, size), max: max}
}

// readFull fills p, reading what is not buffered yet straight from the
// stream when that is large, to save a copy.
func (br *bufferReader) readFull(p []byte) (int, error) {
	if len(p)-br.r.Buffered() < quicDirectRead {
		return io.ReadFull(br.r, p)
	}
	k := 0
	if br.r.Buffered() > 0 {
		k, _ = br.r.Read(p)
	}
	m, err := io.ReadFull(br.src, p[k:])
	return k + m, err
}

// next returns the next buffer, newly allocated. Its error is the stream's
// (io.EOF at a clean end, io.ErrUnexpectedEOF inside a buffer) or a
// *protocolError for a bad length.
func (br *bufferReader) next() ([]byte, error) {
	if _, err := io.ReadFull(br.r, br.hdr[:]); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(br.hdr[:])
	if n == 0 {
		return nil, &protocolError{"empty buffer"}
	}
	if uint64(n) > uint64(br.max) {
		return nil, &protocolError{fmt.Sprintf("buffer of %d bytes exceeds the maximum of %d", n, br.max)}
	}
	if n <= quicReadChunk {
		buf := make([]byte, n)
		if _, err := br.readFull(buf); err != nil {
			return nil, unexpected(err)
		}
		return buf, nil
	}
	buf := make([]byte, 0, quicReadChunk)
	for len(buf) < int(n) {
		if len(buf) == cap(buf) {
			buf = append(buf, make([]byte, min(cap(buf), int(n)-len(buf)))...)[:len(buf)]
		}
		m, err := br.readFull(buf[len(buf):min(cap(buf), int(n))])
		buf = buf[:len(buf)+m]
		if err != nil {
			return nil, unexpected(err)
		}
	}
	return buf, nil
}

func unexpected(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// protocolError is a peer's violation of the link protocol.
type protocolError struct{ msg string }

func (e *protocolError) Error() string { return "transport: quic: " + e.msg }
