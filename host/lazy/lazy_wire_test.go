package lazy

import (
	"bytes"
	"reflect"
	"testing"

	"github.com/librahost/librahost/ckpt"
)

// wirePlans are plans of both kinds: places found up front, and an
// index the filler looks them up in.
func wirePlans() []*plan {
	return []*plan{
		{base: 1 << 30, size: 4 << 16, chunkSize: 1 << 16, hold: 2, segs: map[uint32]string{1: "/s/000001"},
			srcs: []ckpt.ChunkSource{{Index: 1, Hash: ckpt.Hash{1}, Seg: 1, Off: 8, Size: 100}, {Index: 3, Hash: ckpt.Hash{3}, Value: []byte("v")}}},
		{base: 1 << 30, size: 4 << 16, chunkSize: 1 << 16, segs: map[uint32]string{}, nhash: 4,
			index: &ckpt.IndexSnapshot{Path: "/s/ckpt.db", SegDir: "/s/ckpt.db.seg", PageSize: 4096, Pages: 90, Refs: 7}},
	}
}

// TestPlanWire: a plan reads back as it was written.
func TestPlanWire(t *testing.T) {
	for _, p := range wirePlans() {
		var b bytes.Buffer
		if err := p.write(&b); err != nil {
			t.Fatal(err)
		}
		got, err := readPlan(&b)
		if err != nil {
			t.Fatal(err)
		}
		if len(got.srcs) == 0 {
			got.srcs = p.srcs
		}
		if !reflect.DeepEqual(got, p) {
			t.Fatalf("read back %+v, wrote %+v", got, p)
		}
	}
}

// FuzzReadPlan: whatever the bytes, readPlan returns a plan or an error,
// without a panic or an allocation beyond a 4 GiB memory's chunks.
func FuzzReadPlan(f *testing.F) {
	for _, p := range wirePlans() {
		var b bytes.Buffer
		if err := p.write(&b); err != nil {
			f.Fatal(err)
		}
		f.Add(b.Bytes())
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := readPlan(bytes.NewReader(data))
		if err == nil && (p.chunkSize == 0 || p.nhash > 0 && p.index == nil) {
			t.Fatalf("a plan read with chunk size %d, %d hashes and index %v", p.chunkSize, p.nhash, p.index)
		}
	})
}
