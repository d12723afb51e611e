package job

import (
	"bytes"
	"reflect"
	"testing"

	"github.com/librahost/librahost/ckpt"
	"github.com/librahost/librahost/host"
)

func TestFinalRoundTrip(t *testing.T) {
	fs := &FinalState{Rank: 3, Base: 7, MemSize: 3 << 16, ChunkSize: 1 << 16, Globals: []uint64{1, 1 << 63},
		Host: []byte(`{"version":1}`), Chunks: []FinalChunk{{Index: 1, Data: bytes.Repeat([]byte{9}, 1<<16)}},
		Files: []byte("LHFDLT\x00 deltas")}
	got, err := DecodeFinal(AppendFinal(nil, fs))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, fs) {
		t.Fatalf("decoded %+v, want %+v", got, fs)
	}
	b := AppendFinal(nil, fs)
	for _, cut := range []int{0, 3, 10, len(b) - 1} {
		if _, err := DecodeFinal(b[:cut]); err == nil {
			t.Fatalf("a last state cut at %d of %d bytes was taken", cut, len(b))
		}
	}
}

func FuzzDecodeFinal(f *testing.F) {
	f.Add(AppendFinal(nil, &FinalState{Rank: 1, Base: 2, MemSize: 1 << 16, ChunkSize: 1 << 16, Host: []byte("{}"),
		Chunks: []FinalChunk{{Index: 0, Data: make([]byte, 1<<16)}}, Files: []byte("files")}))
	f.Add([]byte(finalMagic))
	f.Fuzz(func(t *testing.T, b []byte) {
		fs, err := DecodeFinal(b)
		if err != nil {
			return
		}
		again, err := DecodeFinal(AppendFinal(nil, fs))
		if err != nil || !reflect.DeepEqual(again, fs) {
			t.Fatalf("a decoded last state does not encode back to itself (%v)", err)
		}
	})
}

// What was written since a round's capture is the union of the ranges of
// the captures after it, with the memory grown since; unknown when a
// capture between was not tracked.
func TestDirtyChainSince(t *testing.T) {
	const cs = 4
	capt := func(size int, since, mark uint64, ranges ...[2]uint64) *host.Capture {
		c := &host.Capture{Memory: make([]byte, size)}
		if mark != 0 {
			c.Dirty = &ckpt.Dirty{Since: since, Mark: mark, Ranges: ranges}
		}
		return c
	}
	var ch dirtyChain
	ch.note(capt(16, 0, 1), 1)                  // round 1
	ch.note(capt(16, 1, 2, [2]uint64{0, 1}), 0) // a checkpoint: chunk 0
	ch.note(capt(16, 2, 3, [2]uint64{5, 9}), 2) // round 2: chunks 1, 2
	ch.note(capt(24, 3, 4, [2]uint64{13, 14}), 0)
	got, ok := ch.since(1, 24, cs)
	if want := []bool{true, true, true, true, true, true}; !ok || !reflect.DeepEqual(got, want) {
		t.Fatalf("since round 1: %v %v, want %v", got, ok, want)
	}
	ch.held(2)
	got, ok = ch.since(2, 24, cs)
	if want := []bool{false, false, false, true, true, true}; !ok || !reflect.DeepEqual(got, want) {
		t.Fatalf("since round 2: %v %v, want %v", got, ok, want)
	}
	if _, ok := ch.since(1, 24, cs); ok {
		t.Fatal("round 1's capture was dropped, yet what was written since it is known")
	}
	ch.note(capt(24, 0, 0), 0) // not tracked
	if _, ok := ch.since(2, 24, cs); ok {
		t.Fatal("a capture between was not tracked, yet what was written is known")
	}
}
