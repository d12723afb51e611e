package ckpt

import (
	"bytes"
	"testing"
)

// A Dirty hint lets a capture hash only the chunks written since the key's
// last capture; a hint relative to anything else is ignored.
func TestCaptureDirtyHint(t *testing.T) {
	cfg := testConfig(t)
	s := openTest(t, cfg)
	cs := uint64(cfg.ChunkSize)
	k := Key{Job: "dirty"}
	mem := genMemory(64*int(cs), 7)
	clear(mem[5*cs : 6*cs]) // one zero chunk

	meta := func(epoch uint64, d *Dirty) Meta {
		m := testMeta(k, epoch)
		m.Dirty = d
		return m
	}
	check := func(epoch uint64, st Stats, hashed, changed int) {
		t.Helper()
		if st.Hashed != hashed || st.Changed != changed || st.Zero != 1 {
			t.Fatalf("epoch %d: hashed %d, changed %d, zero %d; want %d, %d, 1", epoch, st.Hashed, st.Changed, st.Zero, hashed, changed)
		}
		m, err := s.Manifest(k, epoch)
		if err != nil {
			t.Fatal(err)
		}
		if m.Dirty != nil {
			t.Fatalf("epoch %d: the manifest keeps the hint", epoch)
		}
		if got := readBack(t, s, m); !bytes.Equal(got, mem) {
			t.Fatalf("epoch %d: memory read back differs", epoch)
		}
	}

	// No earlier capture: everything is hashed.
	check(1, capture(t, s, meta(1, &Dirty{Since: 9, Mark: 1}), mem), 64, 63)

	// Two chunks written: only the chunks the ranges touch are hashed
	// (chunk 3, chunks 7 and 8 for a range across their boundary).
	mem[3*cs+5]++
	mem[8*cs-1]++
	mem[8*cs]++
	st := capture(t, s, meta(2, &Dirty{Since: 1, Mark: 2, Ranges: [][2]uint64{{3*cs + 5, 3*cs + 6}, {8*cs - 1, 8*cs + 1}}}), mem)
	check(2, st, 3, 3)

	// A range that changed nothing is hashed and found unchanged.
	st = capture(t, s, meta(3, &Dirty{Since: 2, Mark: 3, Ranges: [][2]uint64{{10 * cs, 10*cs + 1}}}), mem)
	check(3, st, 1, 0)

	// A hint relative to another capture is ignored.
	mem[20*cs]++
	st = capture(t, s, meta(4, &Dirty{Since: 2, Mark: 4}), mem)
	check(4, st, 64, 1)

	// So is no hint at all, which also ends the chain.
	mem[21*cs]++
	check(5, capture(t, s, meta(5, nil), mem), 64, 1)
	mem[22*cs]++
	check(6, capture(t, s, meta(6, &Dirty{Since: 5, Mark: 6}), mem), 64, 1)

	// Memory that grew: the new chunks are hashed.
	mem = append(mem, genMemory(2*int(cs), 8)...)
	check(7, capture(t, s, meta(7, &Dirty{Since: 6, Mark: 7}), mem), 2, 2)
}
