package ckpt

import (
	"bytes"
	"encoding/binary"
	"testing"
)

// A segment length in the index that a damage made shorter than the
// values recorded in the segment must not cut them off at Open, nor let
// a capture write over them.
func TestOpenDamagedSegmentLength(t *testing.T) {
	cfg := testConfig(t)
	s := openTest(t, cfg)
	k := Key{Job: "seglen"}
	mem1, mem2 := twoEpochs(t, s, k)
	mutateValue(t, s, bucketSegments, segmentKey(1), func(v []byte) []byte {
		return binary.BigEndian.AppendUint64(nil, 100)
	})
	s.Close()
	s = openTest(t, cfg)
	mem3 := bytes.Clone(mem2)
	for i := 0; i < len(mem3); i += 3 * cs(s) {
		mem3[i] ^= 0x77
	}
	capture(t, s, testMeta(k, 3), mem3)
	for i, want := range [][]byte{mem1, mem2, mem3} {
		e := uint64(i + 1)
		if got := readBack(t, s, mustManifest(t, s, k, e)); !bytes.Equal(got, want) {
			t.Fatalf("epoch %d reads back different memory", e)
		}
	}
}
