package ckpt

import (
	"errors"
	"math/rand/v2"
	"sync"
	"testing"
	"time"
)

// halfFrozen is a copy-on-write snapshot, all copied, whose Next hands out
// the first half of the chunks and then waits until released.
type halfFrozen struct {
	*frozenMem
	half    int
	release chan struct{}
	once    sync.Once
	blocked chan struct{} // closed when a Next first waits
}

func newHalfFrozen(mem []byte, n int) *halfFrozen {
	f := &halfFrozen{frozenMem: newFrozenMem(mem, n), half: n / 2, release: make(chan struct{}), blocked: make(chan struct{})}
	for i := range n {
		f.copyChunk(i)
	}
	return f
}

func (f *halfFrozen) Next(cs int) (lo, hi int) {
	f.mu.Lock()
	past := f.next >= f.half
	f.mu.Unlock()
	if past {
		f.once.Do(func() { close(f.blocked) })
		<-f.release
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	lo = f.next
	f.next = min(lo+1, f.half, len(f.copied))
	if lo >= f.half {
		f.next = min(lo+4, len(f.copied))
	}
	return lo, f.next
}

// streamStore opens a store whose scans run on two goroutines.
func streamStore(t *testing.T) (*Store, Config) {
	cfg := testConfig(t)
	cfg.Workers = 2
	return openTest(t, cfg), cfg
}

// randomMemory is n chunks of cs random bytes: every chunk differs and
// none compresses, so that each value fills most of a pool buffer.
func randomMemory(n, cs int, seed uint64) []byte {
	mem := make([]byte, n*cs)
	r := rand.NewChaCha8([32]byte{byte(seed)})
	_, _ = r.Read(mem)
	return mem
}

// streamed starts a full copy-on-write capture of n random chunks whose
// scan stops halfway, with a batch per value, and waits until the first
// half's values are written (commit:batched after each). It returns the
// capture, the snapshot and the memory, with the scan still stopped.
func streamed(t *testing.T, s *Store, k Key, epoch uint64, n int) (*Pending, *halfFrozen, []byte) {
	t.Helper()
	old := batchBytes
	batchBytes = 1 // a batch per value
	t.Cleanup(func() { batchBytes = old })
	batched := make(chan struct{}, n)
	setFailpoint(func(name string) error {
		if name == "commit:batched" {
			select {
			case batched <- struct{}{}:
			default: // past the first half
			}
		}
		return nil
	})
	t.Cleanup(func() { setFailpoint(nil) })
	mem := randomMemory(n, s.cfg.ChunkSize, epoch)
	f := newHalfFrozen(mem, n)
	meta := testMeta(k, epoch)
	meta.Dirty = &Dirty{Mark: epoch, Frozen: f}
	p, err := s.Capture(meta, mem)
	if err != nil {
		t.Fatal(err)
	}
	for range f.half {
		select {
		case <-batched:
		case <-p.Done():
			t.Fatalf("the capture ended before its scan did: %v", p.Err())
		case <-time.After(time.Minute): // a guard against a hang, not a measure
			t.Fatal("the first half of a copy-on-write capture was not written while its scan was stopped")
		}
	}
	<-f.blocked
	return p, f, mem
}

// A copy-on-write capture's values are written while its scan goes on:
// with the scan stopped after half of the chunks, their values are in a
// segment, synced, before the rest is read; and the whole reads back.
func TestCaptureFrozenStreams(t *testing.T) {
	s, cfg := streamStore(t)
	k := Key{Job: "stream"}
	const n = 32
	p, f, mem := streamed(t, s, k, 1, n)
	s.segs.mu.Lock()
	synced := s.segs.synced
	s.segs.mu.Unlock()
	if synced < int64(f.half*cfg.ChunkSize) {
		t.Fatalf("%d bytes synced with the scan stopped after %d chunks of %d bytes", synced, f.half, cfg.ChunkSize)
	}
	select {
	case <-p.Done():
		t.Fatal("the capture is durable before its scan ended")
	default:
	}
	close(f.release)
	if err := p.Wait(); err != nil {
		t.Fatal(err)
	}
	if st := p.Stats(); st.Changed != n || st.BytesStored < int64(n*cfg.ChunkSize) {
		t.Fatalf("stats: %+v", st)
	}
	readsBack(t, s, k, 1, mem)
	checkRefs(t, s)
}

// The pool buffers that a copy-on-write capture's values are packed into
// go back to the pool once those values are written, before the capture
// ends: with the scan stopped after half of the chunks (a value filling
// most of a buffer each), the capture holds only the scan's own buffers.
func TestCaptureFrozenGivesSlabsBack(t *testing.T) {
	s, cfg := streamStore(t)
	const n = 64
	free := reservedFree(s, 4*n)
	before := free()
	p, f, mem := streamed(t, s, Key{Job: "slabs"}, 1, n)
	// Each scan goroutine holds two buffers (its chunk, its scratch) and
	// the slab it packs into; the values written hold none.
	if out := before - free(); out > 3*cfg.Workers {
		t.Fatalf("%d pool buffers out with %d of %d values written (at most %d expected)", out, f.half, n, 3*cfg.Workers)
	}
	close(f.release)
	if err := p.Wait(); err != nil {
		t.Fatal(err)
	}
	if out := before - free(); out != 0 {
		t.Fatalf("%d pool buffers not given back after the capture", out)
	}
	readsBack(t, s, Key{Job: "slabs"}, 1, mem)
}

// A value that an early batch skipped, its chunk being stored already, is
// kept until the commit: when that chunk goes meanwhile (the only key that
// held it is deleted), the commit writes the kept value, and the capture
// reads back.
func TestCaptureFrozenKeepsSkippedValues(t *testing.T) {
	s, cfg := streamStore(t)
	const n = 16
	other := Key{Job: "other"}
	// The other key stores the memory of the capture to come.
	capture(t, s, testMeta(other, 1), randomMemory(n, cfg.ChunkSize, 1))
	syncedAt := func() int64 {
		s.segs.mu.Lock()
		defer s.segs.mu.Unlock()
		return s.segs.synced
	}
	synced := syncedAt()
	k := Key{Job: "skip"}
	p, f, mem := streamed(t, s, k, 1, n)
	if now := syncedAt(); now != synced {
		t.Fatalf("the early batches wrote %d bytes of values already stored", now-synced)
	}
	if err := s.Delete(other); err != nil {
		t.Fatal(err)
	}
	close(f.release)
	if err := p.Wait(); err != nil {
		t.Fatal(err)
	}
	if st := p.Stats(); st.BytesStored < int64(n*cfg.ChunkSize) {
		t.Fatalf("stored %d bytes of %d chunks", st.BytesStored, n)
	}
	readsBack(t, s, k, 1, mem)
	checkRefs(t, s)
}

// With the values held bounded to two bytes, a copy-on-write capture
// queued behind another that the writer is still writing holds no more
// than its bound either: while the first capture's scan is stopped, the
// second's scan waits after each of its goroutines published one value
// (rather than holding all of its values until the writer comes to it);
// once the first goes on, both are written and read back.
func TestCaptureFrozenBounded(t *testing.T) {
	s, cfg := streamStore(t)
	defer func(h int) { heldMax = h }(heldMax)
	heldMax = 1
	const n = 32
	first := Key{Job: "first"}
	p1, f1, mem1 := streamed(t, s, first, 1, n) // a batch per value: the scan waits after each
	release := sync.OnceFunc(func() { close(f1.release) })
	defer release() // on a failure too: the store's Close waits for the writer

	waiting := make(chan struct{}, 2*n)
	queuedHook = func() { waiting <- struct{}{} }
	defer func() { queuedHook = nil }()
	second := Key{Job: "second"}
	mem2 := randomMemory(n, cfg.ChunkSize, 2)
	p2 := frozenCapture(t, s, testMeta(second, 1), mem2, n)
	select {
	case <-waiting:
	case <-p2.scanned:
		t.Fatal("a capture queued behind another was scanned whole before the writer came to it")
	case <-time.After(time.Minute): // a guard against a hang, not a measure
		t.Fatal("the queued capture's scan neither waited nor ended")
	}
	select {
	case <-p2.scanned:
		t.Fatal("a capture queued behind another was scanned whole before the writer came to it")
	default:
	}
	if got := p2.stream.published(); got > cfg.Workers {
		t.Fatalf("the queued capture published %d values with a bound of 2 bytes and %d scan goroutines", got, cfg.Workers)
	}
	release()
	durableReadBack(t, s, written{p1, first, mem1}, written{p2, second, mem2})
}

// A queued capture's scan does not wait for the writer while the writer
// waits outside the store: the capture before it asks for its host state
// once its chunks are written (Meta.HostLater), and that waits here for
// the queued capture's scan to end, as a job's channel state may wait for
// guests that the queued capture's snapshot holds. Both are written.
func TestCaptureFrozenBoundedHostLater(t *testing.T) {
	s, cfg := streamStore(t)
	defer func(h int) { heldMax = h }(heldMax)
	heldMax = 1
	old := batchBytes
	batchBytes = 1
	defer func() { batchBytes = old }()
	const n = 32

	first := Key{Job: "first"}
	mem1 := randomMemory(n, cfg.ChunkSize, 1)
	taken := make(chan *Pending, 1)
	meta1 := testMeta(first, 1)
	meta1.HostLater = func() ([]byte, error) {
		p2 := <-taken
		select {
		case <-p2.scanned:
			return []byte("host"), nil
		case <-time.After(time.Minute): // a guard against a hang, not a measure
			return nil, errors.New("the queued capture's scan waited for a writer that waited for it")
		}
	}
	p1, err := s.Capture(meta1, mem1)
	if err != nil {
		t.Fatal(err)
	}

	second := Key{Job: "second"}
	mem2 := randomMemory(n, cfg.ChunkSize, 2)
	p2 := frozenCapture(t, s, testMeta(second, 1), mem2, n)
	taken <- p2
	durableReadBack(t, s, written{p1, first, mem1}, written{p2, second, mem2})
}

// A capture taken while the key's capture before is still being written
// is compared with an older base, so it compresses again what that one
// stores; once that one is durable, the capture's batches find those
// chunks stored and let their values go rather than hold them until its
// commit (dropStored): at its commit it holds none of the pool's buffers,
// stores nothing, and reads back.
func TestCaptureFrozenDropsStoredValues(t *testing.T) {
	s, _ := streamStore(t)
	const n = 64
	free := reservedFree(s, 4*n)
	before := free()
	k := Key{Job: "again"}
	p1, f1, mem := streamed(t, s, k, 1, n)
	release := sync.OnceFunc(func() { close(f1.release) })
	defer release()

	var mu sync.Mutex
	var commits, out int
	setFailpoint(func(name string) error {
		if name == "commit:chunks" {
			mu.Lock()
			if commits++; commits == 2 { // the second capture's
				out = before - free()
			}
			mu.Unlock()
		}
		return nil
	})
	p2 := frozenCapture(t, s, testMeta(k, 2), mem, n)
	select {
	case <-p2.scanned:
	case <-time.After(time.Minute): // a guard against a hang, not a measure
		t.Fatal("the second capture's scan did not end")
	}
	if got := p2.stream.published(); got != n {
		t.Fatalf("the second capture compressed %d chunks of %d (its base is older than the first)", got, n)
	}
	release()
	for _, p := range []*Pending{p1, p2} {
		if err := p.Wait(); err != nil {
			t.Fatal(err)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if commits != 2 || out != 0 {
		t.Fatalf("at the second capture's commit (of %d commits), %d pool buffers were out", commits, out)
	}
	if st := p2.Stats(); st.BytesStored != 0 {
		t.Fatalf("the second capture stored %d bytes of chunks the first stored", st.BytesStored)
	}
	readsBack(t, s, k, 2, mem)
	readsBack(t, s, k, 1, mem)
	checkRefs(t, s)
}

// frozenCapture takes a copy-on-write capture of n chunks of mem with
// meta, every chunk of its snapshot copied already.
func frozenCapture(t *testing.T, s *Store, meta Meta, mem []byte, n int) *Pending {
	t.Helper()
	f := newFrozenMem(mem, n)
	for i := range n {
		f.copyChunk(i)
	}
	meta.Dirty = &Dirty{Mark: meta.Epoch, Frozen: f}
	p, err := s.Capture(meta, mem)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// written is a capture of epoch 1 of k's memory mem.
type written struct {
	p   *Pending
	k   Key
	mem []byte
}

// durableReadBack waits for each capture to be durable, reads it back,
// and checks the store's references.
func durableReadBack(t *testing.T, s *Store, ws ...written) {
	t.Helper()
	for _, w := range ws {
		if err := w.p.Wait(); err != nil {
			t.Fatal(err)
		}
		readsBack(t, s, w.k, 1, w.mem)
	}
	checkRefs(t, s)
}

// reservedFree reserves n of s's pool buffers and returns how many are
// free at the time of a call.
func reservedFree(s *Store, n int) func() int {
	s.bufs.reserve(n)
	return func() int {
		s.bufs.mu.Lock()
		defer s.bufs.mu.Unlock()
		return len(s.bufs.free)
	}
}
