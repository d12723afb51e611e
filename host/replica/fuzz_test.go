package replica

import (
	"testing"

	"github.com/librahost/librahost/ckpt"
)

func FuzzDecodeOffer(f *testing.F) {
	f.Add(encodeOffer(offer{ckpt.Key{Job: "j", Worker: 1}, 3, []byte("manifest")}))
	f.Add([]byte{offerVersion, 0, 1, 'j'})
	f.Fuzz(func(t *testing.T, b []byte) {
		o, err := decodeOffer(b)
		if err != nil {
			return
		}
		if got := encodeOffer(o); string(got) != string(b) {
			t.Fatalf("offer does not encode back to its bytes")
		}
	})
}

func FuzzDecodeIndexes(f *testing.F) {
	f.Add(encodeIndexes([]uint32{0, 2, 7}), 8)
	f.Add([]byte{0, 0, 0}, 1)
	f.Fuzz(func(t *testing.T, b []byte, n int) {
		ix, err := decodeIndexes(b, n)
		if err != nil {
			return
		}
		for k, i := range ix {
			if int(i) >= n || (k > 0 && i <= ix[k-1]) {
				t.Fatalf("index %d accepted: %v of %d", i, ix, n)
			}
		}
	})
}
