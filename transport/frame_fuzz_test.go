package transport

import (
	"errors"
	"reflect"
	"testing"
)

// FuzzDecodeFrame checks that no input makes the decoder panic, that the
// count it returns stays inside the input, and that whatever it accepts
// encodes back to a frame that decodes to the same value.
func FuzzDecodeFrame(f *testing.F) {
	var batch []byte
	for _, fr := range sampleFrames() {
		b := AppendFrame(nil, &fr)
		f.Add(b)
		f.Add(AppendFrameSum(nil, &fr))
		f.Add(b[:len(b)/2])
		batch = AppendFrame(batch, &fr)
	}
	f.Add(batch)
	f.Fuzz(func(t *testing.T, b []byte) {
		fr, n, err := DecodeFrame(b)
		if n < 0 || n > len(b) {
			t.Fatalf("consumed %d of %d bytes", n, len(b))
		}
		if err != nil {
			if n != 0 && !errors.Is(err, ErrUnknownType) {
				t.Fatalf("consumed %d bytes with error %v", n, err)
			}
		} else {
			var again []byte
			if b[2]&flagChecksum != 0 {
				again = AppendFrameSum(nil, &fr)
			} else {
				again = AppendFrame(nil, &fr)
			}
			fr2, n2, err := DecodeFrame(again)
			if err != nil || n2 != len(again) {
				t.Fatalf("re-encoded frame does not decode: %v (%d of %d)", err, n2, len(again))
			}
			if !reflect.DeepEqual(normal(fr), normal(fr2)) {
				t.Fatalf("re-encoding changed the frame:\n%+v\n%+v", fr, fr2)
			}
		}
		if _, err := DecodeFrames(nil, b); err == nil && len(b) > 0 && n == 0 && !errors.Is(err, ErrUnknownType) {
			// DecodeFrames agrees with DecodeFrame on the first frame.
			_, _, first := DecodeFrame(b)
			if first != nil && !errors.Is(first, ErrUnknownType) {
				t.Fatalf("DecodeFrames accepted what DecodeFrame refused: %v", first)
			}
		}
	})
}
