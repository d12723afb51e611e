package jobctl

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"
)

func codecFrames() []frame {
	return []frame{
		{kind: kindHello, inc: 3, job: "job-1", body: helloBody(1 << 63)},
		{kind: kindMsg, inc: 1, seq: 7, ack: 9, job: "j", body: []byte{1, 2, 3}},
		{kind: kindBeat, inc: 1<<64 - 1, ack: 1, job: strings.Repeat("x", 255), body: []byte{}},
	}
}

func TestFrameRoundTrip(t *testing.T) {
	var stream []byte
	for _, f := range codecFrames() {
		stream = appendFrame(stream, f)
	}
	r := bytes.NewReader(stream)
	for _, want := range codecFrames() {
		got, err := readFrame(r)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("read %v, want %v", got, want)
		}
	}
	if _, err := readFrame(r); err != io.EOF {
		t.Fatalf("after the last frame: %v", err)
	}
}

// TestFrameRefuses: what is not a frame is refused in one line.
func TestFrameRefuses(t *testing.T) {
	good := appendFrame(nil, codecFrames()[1])
	edit := func(i int, v byte) []byte { b := bytes.Clone(good); b[i] = v; return b }
	withLen := func(b []byte) []byte { binary.BigEndian.PutUint32(b, uint32(len(b)-4)); return b }
	for _, tc := range []struct {
		name string
		b    []byte
		want string
	}{
		{"newer version", edit(4, 2), "version 2, this build speaks version 1"},
		{"unknown kind", edit(5, 9), "unknown kind 9"},
		{"short", withLen(bytes.Clone(good[:10])), "shorter than a header"},
		{"job past the end", edit(30, 200), "job ID past the frame's end"},
		{"too long", binary.BigEndian.AppendUint32(nil, maxFrame+1), "length 8388609"},
		{"msg without seq", appendFrame(nil, frame{kind: kindMsg, job: "j"}), "MSG frame with seq 0"},
		{"beat with seq", appendFrame(nil, frame{kind: kindBeat, seq: 1, job: "j"}), "BEAT frame with seq 1"},
		{"beat with body", appendFrame(nil, frame{kind: kindBeat, job: "j", body: []byte{0}}), "BEAT with 1 bytes"},
		{"short hello", appendFrame(nil, frame{kind: kindHello, job: "j", body: []byte{0}}), "HELLO of 1 bytes"},
	} {
		_, err := readFrame(bytes.NewReader(tc.b))
		if !errors.Is(err, ErrBadFrame) || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%s: %v, want one line with %q", tc.name, err, tc.want)
		}
	}
	for n := 1; n < len(good); n++ {
		if _, err := readFrame(bytes.NewReader(good[:n])); err != io.ErrUnexpectedEOF {
			t.Errorf("cut to %d of %d bytes: %v", n, len(good), err)
		}
	}
}

// FuzzFrameDecode: bytes read as a frame encode back to themselves, or
// are refused; never a panic.
func FuzzFrameDecode(f *testing.F) {
	for _, fr := range codecFrames() {
		b := appendFrame(nil, fr)
		f.Add(b)
		f.Add(b[:len(b)/2])
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		fr, err := readFrame(bytes.NewReader(b))
		if err != nil {
			return
		}
		n := 4 + int(binary.BigEndian.Uint32(b))
		if again := appendFrame(nil, fr); !bytes.Equal(again, b[:n]) {
			t.Fatalf("%x read as %v, which encodes as %x", b[:n], fr, again)
		}
	})
}
