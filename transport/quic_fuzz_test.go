package transport

import (
	"bytes"
	"errors"
	"io"
	"testing"
)

// FuzzQUICFraming feeds arbitrary bytes to the link's buffer decoder: it
// must never panic, never return an empty or oversized buffer, and what it
// decodes must encode back to the bytes it consumed.
func FuzzQUICFraming(f *testing.F) {
	enc := func(bufs ...[]byte) []byte {
		var out []byte
		for _, b := range bufs {
			out = appendBufferHeader(out, len(b))
			out = append(out, b...)
		}
		return out
	}
	f.Add(enc([]byte("hello")))
	f.Add(enc([]byte("a"), []byte("bc"), bytes.Repeat([]byte{7}, 300)))
	f.Add([]byte{0, 0, 0, 0})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 1})
	f.Add([]byte{0, 0, 4, 1, 9, 9})
	f.Add([]byte{0, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		const max = 1024
		br := newBufferReader(bytes.NewReader(data), 16, max)
		var got [][]byte
		for {
			b, err := br.next()
			if err != nil {
				var pe *protocolError
				if err != io.EOF && err != io.ErrUnexpectedEOF && !errors.As(err, &pe) {
					t.Fatalf("unexpected error %v", err)
				}
				break
			}
			if len(b) == 0 || len(b) > max {
				t.Fatalf("decoded a buffer of %d bytes", len(b))
			}
			got = append(got, b)
		}
		re := enc(got...)
		if !bytes.HasPrefix(data, re) {
			t.Fatalf("re-encoding %d buffers does not give the input's prefix", len(got))
		}
	})
}

// FuzzQUICHello: the hello decoder never panics and round-trips.
func FuzzQUICHello(f *testing.F) {
	f.Add(quicHello{kind: helloDial, instance: 1, seq: 2}.append(nil))
	f.Add(quicHello{kind: helloAccept, instance: 1 << 60, seq: 0}.append(nil))
	f.Add([]byte("LHQ"))
	f.Add(make([]byte, quicHelloLen))
	f.Fuzz(func(t *testing.T, data []byte) {
		h, err := decodeHello(data)
		if err != nil {
			return
		}
		if !bytes.Equal(h.append(nil), data) {
			t.Fatalf("hello %+v does not encode back to %x", h, data)
		}
	})
}

// TestQUICLargeBufferGrowth: a buffer above the read chunk is assembled
// piecewise, and a stream that ends inside it is an unexpected EOF.
func TestQUICLargeBufferGrowth(t *testing.T) {
	n := 5*quicReadChunk/2 + 3
	payload := bytes.Repeat([]byte{0xab}, n)
	data := append(appendBufferHeader(nil, n), payload...)
	br := newBufferReader(bytes.NewReader(data), 4096, 4*quicReadChunk)
	b, err := br.next()
	if err != nil || !bytes.Equal(b, payload) {
		t.Fatalf("got %d bytes, %v", len(b), err)
	}
	br = newBufferReader(bytes.NewReader(data[:len(data)-1]), 4096, 4*quicReadChunk)
	if _, err := br.next(); err != io.ErrUnexpectedEOF {
		t.Fatalf("truncated: %v", err)
	}
	br = newBufferReader(bytes.NewReader(data), 4096, n-1)
	var pe *protocolError
	if _, err := br.next(); !errors.As(err, &pe) {
		t.Fatalf("over the maximum: %v", err)
	}
}
