package ckpt

import (
	"bytes"
	"slices"
	"sync"
	"testing"
)

// frozenMem stands in for a copy-on-write snapshot: its chunks hold
// garbage until the test copies them, one at a time, after Capture has
// returned.
type frozenMem struct {
	mu     sync.Mutex
	cond   *sync.Cond
	need   []bool
	copied []bool
	done   bool
	waits  []int
}

func newFrozenMem(n int) *frozenMem {
	f := &frozenMem{copied: make([]bool, n)}
	f.cond = sync.NewCond(&f.mu)
	return f
}

func (f *frozenMem) Need(_ int, need []bool) {
	f.mu.Lock()
	f.need = slices.Clone(need)
	f.mu.Unlock()
}

func (f *frozenMem) Wait(i, _ int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.waits = append(f.waits, i)
	for !f.copied[i] {
		f.cond.Wait()
	}
}

func (f *frozenMem) Done() {
	f.mu.Lock()
	f.done = true
	f.mu.Unlock()
}

func (f *frozenMem) copyChunk(i int) {
	f.mu.Lock()
	f.copied[i] = true
	f.cond.Broadcast()
	f.mu.Unlock()
}

// A capture of a copy-on-write snapshot returns before any chunk is
// copied, reads only the chunks it said it needs, each once copied (and
// copies none out of it), and stores the memory of the capture instant.
func TestCaptureFrozen(t *testing.T) {
	cfg := testConfig(t)
	s := openTest(t, cfg)
	cs := uint64(cfg.ChunkSize)
	k := Key{Job: "cow"}
	const n = 32
	want := genMemory(n*int(cs), 11)
	// Full: every chunk is needed.
	snap := make([]byte, len(want))
	f := newFrozenMem(n)
	meta := testMeta(k, 1)
	meta.Dirty = &Dirty{Mark: 1, Frozen: f}
	p, err := s.Capture(meta, snap)
	if err != nil {
		t.Fatal(err)
	}
	if st := p.Stats(); !st.CopyOnWrite {
		t.Fatalf("stats of a copy-on-write capture: %+v", st)
	}
	if f.need == nil || slices.Contains(f.need, false) {
		t.Fatalf("a full capture needs every chunk: %v", f.need)
	}
	for i := n - 1; i >= 0; i-- { // backwards, while the store waits
		copy(snap[i*int(cs):], want[i*int(cs):(i+1)*int(cs)])
		f.copyChunk(i)
	}
	if err := p.Wait(); err != nil {
		t.Fatal(err)
	}
	if !f.done {
		t.Fatal("Done not called")
	}
	// The changed chunks were compressed where they were in the
	// snapshot, not copied out of it first.
	if st := p.Stats(); st.BytesCopied != 0 || st.Changed == 0 {
		t.Fatalf("a copy-on-write capture copied %d bytes of %d changed chunks", st.BytesCopied, st.Changed)
	}
	m, err := s.Manifest(k, 1)
	if err != nil {
		t.Fatal(err)
	}
	if got := readBack(t, s, m); !bytes.Equal(got, want) {
		t.Fatal("memory read back differs")
	}

	// Incremental: only the written chunks are needed and read.
	want[3*cs]++
	want[20*cs+9]++
	snap = slices.Clone(want)
	for _, i := range []int{3, 20} {
		clear(snap[i*int(cs) : (i+1)*int(cs)]) // not copied yet
	}
	f = newFrozenMem(n)
	meta = testMeta(k, 2)
	meta.Dirty = &Dirty{Since: 1, Mark: 2, Ranges: [][2]uint64{{3 * cs, 3*cs + 1}, {20*cs + 9, 20*cs + 10}}, Frozen: f}
	p, err = s.Capture(meta, snap)
	if err != nil {
		t.Fatal(err)
	}
	var needed []int
	for i, b := range f.need {
		if b {
			needed = append(needed, i)
		}
	}
	if !slices.Equal(needed, []int{3, 20}) {
		t.Fatalf("incremental capture needs chunks %v, want [3 20]", needed)
	}
	// The next capture of the key, taken before this one's chunks are
	// copied, stores the same memory.
	next := make(chan error, 1)
	go func() {
		p, err := s.Capture(testMeta(k, 3), want)
		if err == nil {
			err = p.Wait()
		}
		next <- err
	}()
	for _, i := range []int{3, 20} {
		copy(snap[i*int(cs):], want[i*int(cs):(i+1)*int(cs)])
		f.copyChunk(i)
	}
	if err := p.Wait(); err != nil {
		t.Fatal(err)
	}
	if err := <-next; err != nil {
		t.Fatal(err)
	}
	if st := p.Stats(); st.Hashed != 2 || st.Changed != 2 || !st.CopyOnWrite {
		t.Fatalf("incremental: %+v", st)
	}
	if !slices.Equal(f.waits, []int{3, 20}) && !slices.Equal(f.waits, []int{20, 3}) {
		t.Fatalf("waited for chunks %v", f.waits)
	}
	for _, e := range []uint64{2, 3} {
		m, err = s.Manifest(k, e)
		if err != nil {
			t.Fatal(err)
		}
		if got := readBack(t, s, m); !bytes.Equal(got, want) {
			t.Fatalf("epoch %d: memory read back differs", e)
		}
	}
}
