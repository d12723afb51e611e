package ckpt

import (
	"bytes"
	"runtime"
	"slices"
	"sync"
	"testing"
)

// frozenMem stands in for a copy-on-write snapshot of mem: its chunks
// hold garbage until the test copies them, one at a time, after Capture
// has returned.
type frozenMem struct {
	mu     sync.Mutex
	cond   *sync.Cond
	mem    []byte
	need   []bool
	copied []bool
	done   bool
	waits  []int
	next   int // the next chunk Next hands out
}

func newFrozenMem(mem []byte, n int) *frozenMem {
	f := &frozenMem{mem: mem, copied: make([]bool, n)}
	f.cond = sync.NewCond(&f.mu)
	return f
}

func (f *frozenMem) Need(_ int, need []bool) {
	f.mu.Lock()
	f.need = slices.Clone(need)
	f.mu.Unlock()
}

// Next hands out the chunks in order, four at a time.
func (f *frozenMem) Next(int) (lo, hi int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	lo = f.next
	f.next = min(lo+4, len(f.copied))
	return lo, f.next
}

func (f *frozenMem) Read(dst []byte, i, cs int) []byte {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.waits = append(f.waits, i)
	for !f.copied[i] {
		f.cond.Wait()
	}
	return append(dst[:0], f.mem[i*cs:min((i+1)*cs, len(f.mem))]...)
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
	f := newFrozenMem(snap, n)
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
	// The changed chunks were compressed as they were read, not copied
	// into a buffer each first.
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
	f = newFrozenMem(snap, n)
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

// The values of a copy-on-write capture's chunks are packed into the
// pool's buffers, which the writer gives back: a capture after the first
// allocates far less than its memory (no fresh slabs to zero and fault
// in per capture), and its memory reads back the same.
func TestCaptureFrozenReusesBuffers(t *testing.T) {
	cfg := testConfig(t)
	cfg.ChunkSize = 64 << 10
	s := openTest(t, cfg)
	cs := cfg.ChunkSize
	k := Key{Job: "cow"}
	const n = 64
	base := genMemory(n*cs, 1)
	var allocs []uint64
	for e := uint64(1); e <= 3; e++ {
		want := slices.Clone(base)
		for i := range n {
			want[i*cs] += byte(e) // every chunk changes
		}
		f := newFrozenMem(want, n)
		for i := range n {
			f.copyChunk(i)
		}
		meta := testMeta(k, e)
		meta.Dirty = &Dirty{Mark: e, Frozen: f}
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		p, err := s.Capture(meta, want)
		if err != nil {
			t.Fatal(err)
		}
		if err := p.Wait(); err != nil {
			t.Fatal(err)
		}
		s.settle()
		runtime.ReadMemStats(&after)
		allocs = append(allocs, after.TotalAlloc-before.TotalAlloc)
		if got := readBack(t, s, mustManifest(t, s, k, e)); !bytes.Equal(got, want) {
			t.Fatalf("epoch %d reads back different memory", e)
		}
	}
	t.Logf("bytes allocated by each capture: %v", allocs)
	for i, a := range allocs[1:] {
		if a > uint64(n*cs)/2 {
			t.Fatalf("capture %d of %d KiB allocated %d KiB (all: %v)", i+2, n*cs>>10, a>>10, allocs)
		}
	}
}
