package transport

import (
	"bytes"
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"
)

func sampleFrames() []Frame {
	return []Frame{
		{Type: FrameData, Src: 0, Dst: 1, Seq: 1, Epoch: 0, Tag: 0, Payload: []byte{}},
		{Type: FrameData, Src: 3, Dst: 70000, Seq: 1 << 40, Epoch: 9, Tag: -1, Payload: []byte("hello")},
		{Type: FrameData, Src: math.MaxUint32, Dst: math.MaxUint32, Seq: math.MaxUint64, Epoch: math.MaxUint64,
			Tag: math.MinInt32, Payload: bytes.Repeat([]byte{0xab}, 300)},
		{Type: FrameData, Src: 1, Dst: 2, Seq: 5, Tag: math.MaxInt32, Payload: []byte("x")},
		{Type: FrameAck, Src: 1, Dst: 0, Cum: 0},
		{Type: FrameAck, Src: 2, Dst: 5, Cum: 123456789},
		{Type: FrameAck, Src: 2, Dst: 5, Cum: 123456789, Stable: 123456000},
		{Type: FrameHello, Version: 1, HostID: "host-a", ClusterID: "c1", Job: "ring"},
		{Type: FrameHello, Version: FrameVersion, HostID: "host-b", Job: "heat", Inc: 3},
		{Type: FrameHello},
		{Type: FrameControl, Kind: 7, Body: []byte("ckpt 3")},
		{Type: FrameControl, Kind: 0, Body: []byte{}},
	}
}

// normal makes nil and empty byte slices compare equal.
func normal(f Frame) Frame {
	if f.Type == FrameData && f.Payload == nil {
		f.Payload = []byte{}
	}
	if f.Type == FrameControl && f.Body == nil {
		f.Body = []byte{}
	}
	return f
}

func TestFrameRoundTrip(t *testing.T) {
	for _, sum := range []bool{false, true} {
		for _, f := range sampleFrames() {
			var b []byte
			if sum {
				b = AppendFrameSum([]byte("prefix"), &f)
			} else {
				b = AppendFrame([]byte("prefix"), &f)
			}
			b = b[len("prefix"):]
			got, n, err := DecodeFrame(b)
			if err != nil {
				t.Fatalf("%s (sum %v): %v", f.String(), sum, err)
			}
			if n != len(b) {
				t.Fatalf("%s: consumed %d of %d", f.String(), n, len(b))
			}
			if !reflect.DeepEqual(normal(got), normal(f)) {
				t.Fatalf("round trip:\n got %+v\nwant %+v", got, f)
			}
		}
	}
}

func TestFrameBatch(t *testing.T) {
	var b []byte
	want := sampleFrames()
	for i := range want {
		if i%2 == 0 {
			b = AppendFrame(b, &want[i])
		} else {
			b = AppendFrameSum(b, &want[i])
		}
	}
	// An unknown type in the middle is skipped.
	b = append(b, FrameMagic, FrameVersion, 99, 2, 0xff, 0xff)
	b = AppendFrame(b, &want[0])
	want = append(want, want[0])
	got, err := DecodeFrames(nil, b)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("got %d frames, want %d", len(got), len(want))
	}
	for i := range got {
		if !reflect.DeepEqual(normal(got[i]), normal(want[i])) {
			t.Fatalf("frame %d: got %+v want %+v", i, got[i], want[i])
		}
	}
}

func TestFrameDataSize(t *testing.T) {
	f := Frame{Type: FrameData, Src: 1, Dst: 2, Seq: 1000, Epoch: 3, Tag: 5, Payload: make([]byte, 64)}
	if n := len(AppendFrame(nil, &f)); n != 64+4+6 {
		t.Fatalf("64-byte DATA frame is %d bytes", n)
	}
}

// Frames of format version 1 (an ACK without stable, a HELLO without
// incarnation) still decode, so that an old peer is refused by the HELLO
// check in one line that names its version.
func TestFrameVersion1(t *testing.T) {
	ack := []byte{FrameMagic, 1, byte(FrameAck), 3, 1, 2, 9}
	f, n, err := DecodeFrame(ack)
	if err != nil || n != len(ack) || f.Cum != 9 || f.Stable != 0 {
		t.Fatalf("v1 ACK: %+v %d %v", f, n, err)
	}
	hello := []byte{FrameMagic, 1, byte(FrameHello), 6, 1, 1, 'b', 0, 1, 'j'}
	f, n, err = DecodeFrame(hello)
	if err != nil || n != len(hello) || f.Version != 1 || f.HostID != "b" || f.Job != "j" || f.Inc != 0 {
		t.Fatalf("v1 HELLO: %+v %d %v", f, n, err)
	}
	// A version 2 ACK has stable and no cut: it claims nothing of the
	// receiver's cuts.
	ack2 := []byte{FrameMagic, 2, byte(FrameAck), 4, 1, 2, 9, 4}
	f, n, err = DecodeFrame(ack2)
	if err != nil || n != len(ack2) || f.Cum != 9 || f.Stable != 4 || f.Cut != 0 {
		t.Fatalf("v2 ACK: %+v %d %v", f, n, err)
	}
	// The version 3 ACK of the same fields is one byte longer: cut.
	if b := AppendFrame(nil, &Frame{Type: FrameAck, Src: 1, Dst: 2, Cum: 9, Stable: 4}); len(b) != len(ack2)+1 || b[1] != FrameVersion {
		t.Fatalf("v3 ACK: % x", b)
	}
	if _, _, err := DecodeFrame([]byte{FrameMagic, 4, byte(FrameAck), 0}); !errors.Is(err, ErrVersion) {
		t.Fatalf("version 4: %v", err)
	}
}

func TestDecodeFrameErrors(t *testing.T) {
	good := AppendFrame(nil, &Frame{Type: FrameAck, Src: 1, Dst: 2, Cum: 300})
	summed := AppendFrameSum(nil, &Frame{Type: FrameControl, Kind: 1, Body: []byte("abc")})
	flip := func(b []byte, i int, v byte) []byte {
		c := bytes.Clone(b)
		c[i] = v
		return c
	}
	hello := func(s string) []byte {
		b := []byte{FrameMagic, FrameVersion, byte(FrameHello), 0, 1}
		b = append(b, 200, 8) // host id length 1024+
		b = append(b, s...)
		b[3] = byte(len(b) - 4)
		return b
	}
	cases := []struct {
		name string
		b    []byte
		want error
	}{
		{"empty", nil, ErrTruncated},
		{"short", good[:2], ErrTruncated},
		{"magic", flip(good, 0, 'X'), ErrMalformed},
		{"magic short", []byte{'X'}, ErrMalformed},
		{"version", flip(good, 1, 4), ErrVersion},
		{"cut", good[:len(good)-1], ErrTruncated},
		{"length overflow", []byte{FrameMagic, FrameVersion, 1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}, ErrMalformed},
		{"length cut", []byte{FrameMagic, FrameVersion, 1, 0xff}, ErrTruncated},
		{"too large", []byte{FrameMagic, FrameVersion, 1, 0xff, 0xff, 0xff, 0xff, 0x0f}, ErrTooLarge},
		{"trailing", append(flip(good, 3, good[3]+1), 0), ErrMalformed},
		{"ack short body", flip(good, 3, 2), ErrMalformed},
		{"checksum", flip(summed, len(summed)-1, summed[len(summed)-1]^1), ErrChecksum},
		{"control empty", []byte{FrameMagic, FrameVersion, byte(FrameControl), 0}, ErrMalformed},
		{"src range", []byte{FrameMagic, FrameVersion, byte(FrameAck), 7, 0xff, 0xff, 0xff, 0xff, 0x1f, 0, 0}, ErrMalformed},
		{"tag range", []byte{FrameMagic, FrameVersion, byte(FrameData), 9, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x1f}, ErrMalformed},
		{"hello string", hello("x"), ErrMalformed},
		{"unknown", []byte{FrameMagic, FrameVersion, 50, 0}, ErrUnknownType},
	}
	for _, c := range cases {
		_, n, err := DecodeFrame(c.b)
		if !errors.Is(err, c.want) {
			t.Errorf("%s: got %v, want %v", c.name, err, c.want)
			continue
		}
		if c.want != ErrUnknownType && n != 0 {
			t.Errorf("%s: consumed %d bytes on error", c.name, n)
		}
		msg := err.Error()
		if !strings.HasPrefix(msg, "transport: ") || strings.Contains(msg, "\n") {
			t.Errorf("%s: error %q is not one prefixed line", c.name, msg)
		}
	}
}

func TestAppendFramePanicsOnCallerBugs(t *testing.T) {
	for _, f := range []Frame{
		{Type: 42},
		{Type: FrameHello, Job: strings.Repeat("j", maxString+1)},
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("no panic for %v", f.Type)
				}
			}()
			AppendFrame(nil, &f)
		}()
	}
}

func BenchmarkAppendDecodeFrame64(b *testing.B) {
	f := Frame{Type: FrameData, Src: 1, Dst: 2, Seq: 1 << 20, Epoch: 3, Tag: 5, Payload: make([]byte, 64)}
	buf := make([]byte, 0, 128)
	b.SetBytes(64)
	for b.Loop() {
		buf = AppendFrame(buf[:0], &f)
		if _, _, err := DecodeFrame(buf); err != nil {
			b.Fatal(err)
		}
	}
}
