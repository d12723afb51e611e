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

// An index entry whose offset a damage moved into another value leaves
// its own value in what looks like a gap: Open must not hand that room
// to new values (or punch it out), so that Repair can still find the
// value through an older copy of the entry.
func TestOpenOverlappingValuesKept(t *testing.T) {
	cfg := testConfig(t)
	s := openTest(t, cfg)
	k := Key{Job: "overlap"}
	_, mem2 := twoEpochs(t, s, k)
	m := mustManifest(t, s, k, 2)
	var a, b Hash // two values of the segment
	for _, h := range m.Chunks {
		if h.IsZero() {
			continue
		}
		if a.IsZero() {
			a = h
		} else if b.IsZero() {
			b = h
		}
	}
	ra, rb := chunkRef(t, s, a), chunkRef(t, s, b)
	if ra.seg != rb.seg {
		t.Fatal("the two values are in different segments")
	}
	orig := valueOf(t, s, a)
	moved := ra
	moved.off = rb.off
	mutateValue(t, s, bucketRefs, a[:], func([]byte) []byte { return encodeRef(moved) })
	s.Close()
	s = openTest(t, cfg)
	mem3 := bytes.Clone(mem2)
	copy(mem3[3*cs(s):4*cs(s)], bytes.Repeat([]byte("z"), cs(s))) // a small new value, which fits any room
	capture(t, s, testMeta(k, 3), mem3)
	got := make([]byte, ra.size)
	if _, err := s.segs.files[ra.seg].ReadAt(got, int64(ra.off)); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, orig) {
		t.Fatal("the value the damaged entry no longer points to was overwritten")
	}
}
