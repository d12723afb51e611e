package ckpt

import (
	"bytes"
	"errors"
	"slices"
	"testing"
	"time"
)

// garbageFor stands in for a snapshot's shadow before the handler copied
// chunks into it: want with chunks clobbered (copyIn puts them back).
func garbageFor(want []byte) []byte {
	g := slices.Clone(want)
	for i := range g {
		g[i] ^= 0x5a
	}
	return g
}

func copyIn(f *frozenMem, snap, want []byte, cs int, chunks ...int) {
	for _, i := range chunks {
		copy(snap[i*cs:(i+1)*cs], want[i*cs:(i+1)*cs])
		f.copyChunk(i)
	}
}

// firstMarked opens a store and makes epoch 1 of job durable: n chunks
// of generated memory, with Dirty.Mark 1 for the next capture's hint.
func firstMarked(t *testing.T, job string, n int, seed uint64) (*Store, Key, int, []byte) {
	cfg := testConfig(t)
	s := openTest(t, cfg)
	k := Key{Job: job}
	mem := genMemory(n*cfg.ChunkSize, seed)
	meta := testMeta(k, 1)
	meta.Dirty = &Dirty{Mark: 1}
	capture(t, s, meta, mem)
	return s, k, cfg.ChunkSize, mem
}

// copyNeeded copies every chunk the capture said it needs.
func copyNeeded(f *frozenMem, snap, want []byte, cs int) {
	f.mu.Lock()
	need := slices.Clone(f.need)
	f.mu.Unlock()
	for i, b := range need {
		if b {
			copyIn(f, snap, want, cs, i)
		}
	}
}

// Two copy-on-write captures of a key overlap: the second is taken, and
// says what it needs, while the first has not had a single chunk copied
// (its hashes are not known); the second works out what changed from its
// hint and takes the first's hashes in the background. Both store the
// memory of their own instant.
func TestCaptureFrozenOverlap(t *testing.T) {
	const n = 32
	s, k, cs, mem1 := firstMarked(t, "overlap", n, 21)

	mem2 := slices.Clone(mem1)
	mem2[3*cs]++
	mem2[20*cs+9]++
	snap2 := garbageFor(mem2)
	f2 := newFrozenMem(snap2, n)
	meta := testMeta(k, 2)
	meta.Dirty = &Dirty{Since: 1, Mark: 2, Ranges: [][2]uint64{{uint64(3 * cs), uint64(3*cs + 1)}, {uint64(20*cs + 9), uint64(20*cs + 10)}}, Frozen: f2}
	p2, err := s.Capture(meta, snap2)
	if err != nil {
		t.Fatal(err)
	}

	mem3 := slices.Clone(mem2)
	mem3[5*cs+7]++
	snap3 := garbageFor(mem3)
	f3 := newFrozenMem(snap3, n)
	meta = testMeta(k, 3)
	meta.Dirty = &Dirty{Since: 2, Mark: 3, Ranges: [][2]uint64{{uint64(5*cs + 7), uint64(5*cs + 8)}}, Frozen: f3}
	type res struct {
		p   *Pending
		err error
	}
	got := make(chan res, 1)
	go func() {
		p, err := s.Capture(meta, snap3)
		got <- res{p, err}
	}()
	var r res
	select {
	case r = <-got:
	case <-time.After(time.Minute): // a deadlock's watchdog, not a timing
		copyIn(f2, snap2, mem2, cs, 3, 20)
		r = <-got
		if r.err == nil {
			copyNeeded(f3, snap3, mem3, cs)
			r.p.Wait()
		}
		t.Fatal("the second capture waited for the first one's chunks")
	}
	if r.err != nil {
		t.Fatal(r.err)
	}
	p3 := r.p
	var needed []int
	for i, b := range f3.need {
		if b {
			needed = append(needed, i)
		}
	}
	if !slices.Equal(needed, []int{5}) {
		t.Fatalf("second capture needs chunks %v, want [5]", needed)
	}
	// The second's chunk first, then the first's.
	copyIn(f3, snap3, mem3, cs, 5)
	copyIn(f2, snap2, mem2, cs, 20, 3)
	if err := p2.Wait(); err != nil {
		t.Fatal(err)
	}
	if err := p3.Wait(); err != nil {
		t.Fatal(err)
	}
	for e, want := range map[uint64][]byte{2: mem2, 3: mem3} {
		m, err := s.Manifest(k, e)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(readBack(t, s, m), want) {
			t.Fatalf("epoch %d: memory read back differs", e)
		}
	}
	if st := p3.Stats(); st.Hashed != 1 || !st.CopyOnWrite {
		t.Fatalf("second capture: %+v", st)
	}
}

// A copy-on-write capture whose hint is relative to a capture that failed
// to be written needs all of memory: the chunks it did not copy would
// have been the failed one's to store.
func TestCaptureFrozenAfterFailure(t *testing.T) {
	const n = 16
	s, k, cs, mem := firstMarked(t, "fail", n, 4)

	mem[3*cs] ^= 0xff
	injected := errors.New("disk full (injected)")
	setFailpoint(func(name string) error {
		if name == "commit:tx" {
			return injected
		}
		return nil
	})
	meta := testMeta(k, 2)
	meta.Dirty = &Dirty{Since: 1, Mark: 2, Ranges: [][2]uint64{{uint64(3 * cs), uint64(3*cs + 1)}}}
	p, err := s.Capture(meta, mem)
	if err != nil {
		t.Fatal(err)
	}
	err = p.Wait()
	setFailpoint(nil)
	if !errors.Is(err, injected) {
		t.Fatalf("epoch 2: %v", err)
	}

	// Nothing written since epoch 2.
	snap := garbageFor(mem)
	f := newFrozenMem(snap, n)
	meta = testMeta(k, 3)
	meta.Dirty = &Dirty{Since: 2, Mark: 3, Frozen: f}
	p, err = s.Capture(meta, snap)
	if err != nil {
		t.Fatal(err)
	}
	copyNeeded(f, snap, mem, cs)
	if err := p.Wait(); err != nil {
		t.Fatal(err)
	}
	m, err := s.Manifest(k, 3)
	if err != nil {
		t.Fatal(err)
	}
	back := make([]byte, m.MemSize)
	if err := s.ReadMemory(m, back); err != nil || !bytes.Equal(back, mem) {
		t.Fatalf("epoch 3 read back: %v, equal %v", err, bytes.Equal(back, mem))
	}
}
