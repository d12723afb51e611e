package ckpt

import (
	"bytes"
	"sync"
	"sync/atomic"
)

// A copy-on-write capture's values reach the writer as its scan makes
// them (valueStream), so that the disk writes while the snapshot is still
// being read, and each pool buffer they are packed into (slab) goes back
// once every value in it is written, so that a capture does not hold all
// of its values at once.

// heldMax is how many bytes of a copy-on-write capture's values may wait
// for the writer: above it the scan waits (valueStream.wait). At least
// 2*batchBytes is used, so that the writer always has a whole batch to
// write when the scan waits.
var heldMax = 64 << 20

// A stream's state, as the writer moves it.
const (
	streamQueued  = iota // the writer has not come to the capture yet
	streamWriting        // the writer takes its values (writeChunks)
	streamDone           // the writer is done with it, or will never come
)

// valueStream hands a copy-on-write capture's values to the writer.
type valueStream struct {
	s      *Store
	p      *Pending
	fz     Frozen
	slots  int           // an upper bound on the jobs: len(p.jobs)
	opened chan struct{} // closed once p.jobs and p.ready are made

	mu    sync.Mutex
	cond  sync.Cond
	seen  map[Hash]struct{} // hashes with a job: a chunk that occurs again is not stored twice
	n     int               // jobs published, p.jobs[:n]
	held  int64             // bytes of published values that no batch has taken care of yet
	state int               // streamQueued, streamWriting or streamDone

	files    []chunkJob // the file blob's chunks to store, encoded by the scan once the snapshot is read
	nextFile atomic.Int64
}

func newStream(s *Store, p *Pending, fz Frozen, slots int) *valueStream {
	st := &valueStream{s: s, p: p, fz: fz, slots: slots, opened: make(chan struct{}), seen: make(map[Hash]struct{})}
	st.cond.L = &st.mu
	return st
}

// open makes room for every job the capture may have; it runs after the
// pause, on the capture's own goroutine.
func (st *valueStream) open() {
	st.p.jobs = make([]chunkJob, st.slots)
	st.p.ready = make(chan int, st.slots) // a send never waits, even once the writer gave up
	close(st.opened)
}

// claim reports whether a chunk with hash h is to be stored: no other
// chunk of the capture had that hash.
func (st *valueStream) claim(h Hash) bool {
	st.mu.Lock()
	defer st.mu.Unlock()
	if _, ok := st.seen[h]; ok {
		return false
	}
	st.seen[h] = struct{}{}
	return true
}

// addFiles keeps the file blob's chunks to store (their copies dropped),
// for the scan to encode once the snapshot is read; the others count as
// processed at once.
func (st *valueStream) addFiles(s *Store, jobs []chunkJob, blob int) {
	kept := jobs[:0]
	for _, j := range jobs {
		if !st.claim(j.hash) {
			s.bufs.put(j.buf)
			continue
		}
		blob -= j.rawLen()
		kept = append(kept, j)
	}
	st.files = kept
	st.p.progress.Add(int64(blob))
}

// publish hands job j, its value made, to the writer.
func (st *valueStream) publish(j chunkJob) {
	st.mu.Lock()
	i := st.n
	st.n++
	st.p.jobs[i] = j
	st.held += int64(len(j.value))
	st.mu.Unlock()
	st.p.ready <- i
}

// wait holds the scan while more than heldMax of its values wait for the
// writer, so that a capture never holds all of its values. That includes
// a capture queued behind another one the writer is still writing (two
// rounds under way, or another worker's capture): its values would
// otherwise pile up until the writer comes to it, up to its whole
// compressed size (1.2 GiB for a 3.75 GiB guest). It does not wait once
// the writer is done with the capture (written, or failed: nothing would
// take its values), nor, while queued, while the writer waits for
// something outside the store (Meta.HostLater of the capture before,
// which may wait for the guests' progress, and so for this scan). So the
// writer never waits for a scan that waits for it: while it takes this
// capture's values, everything published is in p.ready or in its batch,
// and above 2*batchBytes held the batch fills and is written; before, it
// waits only for captures taken earlier, whose scans do not wait for
// later ones.
func (st *valueStream) wait() {
	limit := int64(max(heldMax, 2*batchBytes))
	st.mu.Lock()
	for st.state == streamWriting && st.held > limit {
		st.cond.Wait()
	}
	queued := st.state == streamQueued && st.held > limit
	st.mu.Unlock()
	if queued {
		st.s.waitQueued(st, limit)
	}
}

// waitQueued waits, for wait, while st is queued with more than limit
// bytes held and the writer is not outside the store.
func (s *Store) waitQueued(st *valueStream, limit int64) {
	s.queueMu.Lock()
	defer s.queueMu.Unlock()
	for !s.writerOutside {
		st.mu.Lock()
		stay := st.state == streamQueued && st.held > limit
		st.mu.Unlock()
		if !stay {
			return
		}
		if h := queuedHook; h != nil {
			h()
		}
		s.queueCond.Wait()
	}
}

// queuedHook, if set (by tests), is called each time a queued capture's
// scan is about to wait for the writer.
var queuedHook func()

// wakeQueued wakes the scans waiting in waitQueued, to look again.
func (s *Store) wakeQueued() {
	s.queueMu.Lock()
	s.queueCond.Broadcast()
	s.queueMu.Unlock()
}

// outside says that the writer waits for something outside the store
// (on), or is back (off): meanwhile no queued scan waits for it.
func (s *Store) outside(on bool) {
	s.queueMu.Lock()
	s.writerOutside = on
	s.queueCond.Broadcast()
	s.queueMu.Unlock()
}

// setState moves the stream to state (streamWriting or streamDone).
func (st *valueStream) setState(state int) {
	st.mu.Lock()
	st.state = state
	st.cond.Broadcast()
	st.mu.Unlock()
	st.s.wakeQueued()
}

// taken says that a batch of n bytes of values is written or skipped.
func (st *valueStream) taken(n int64) {
	st.mu.Lock()
	st.held -= n
	st.cond.Broadcast()
	st.mu.Unlock()
}

// published returns how many jobs were published; once compressed is
// closed, that is all of them.
func (st *valueStream) published() int {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.n
}

// encodeFiles encodes the file blob's chunks that no other scan goroutine
// took, each into a pool buffer of its own (given back with the capture).
func (s *Store) encodeFiles(st *valueStream) {
	for {
		k := int(st.nextFile.Add(1) - 1)
		if k >= len(st.files) {
			return
		}
		j := st.files[k]
		s.encodeJob(&j)
		st.publish(j)
		st.p.progress.Add(int64(j.raw))
		st.wait()
	}
}

// slab is a pool buffer that values are packed into (carve). refs counts
// the values in it not yet written, plus one while values are still
// being packed into it; at zero it goes back to the pool.
type slab struct {
	buf  []byte
	refs atomic.Int32
}

// unref drops one reference to sl (nil: none).
func (s *Store) unref(sl *slab) {
	if sl != nil && sl.refs.Add(-1) == 0 {
		s.bufs.put(sl.buf)
	}
}

// carve copies v to the free end of cur (a fresh pool buffer if v does not
// fit: cur's packing reference is dropped and the new one's taken), and
// returns the copy, capped at its length, the slab it is in, with a
// reference taken for it, and the slab to pack into next. A value larger
// than a pool buffer is kept apart (no slab). A capture holds its values
// at their compressed size rather than in a chunk-sized buffer each, and
// in buffers the pool keeps warm between captures rather than in fresh
// memory that each capture zeroes and faults in again.
func (s *Store) carve(cur *slab, v []byte) (value []byte, in, next *slab) {
	if len(v) > s.bufs.size {
		return bytes.Clone(v), nil, cur
	}
	if cur == nil || len(v) > cap(cur.buf)-len(cur.buf) {
		s.unref(cur)
		cur = &slab{buf: s.bufs.get()[:0]}
		cur.refs.Store(1)
	}
	n := len(cur.buf)
	cur.buf = append(cur.buf, v...)
	cur.refs.Add(1)
	return cur.buf[n:len(cur.buf):len(cur.buf)], cur, cur
}

// release gives back the slabs of the listed jobs' values, which a batch
// wrote and synced: nothing reads them again (the commit takes their
// place from p.locs).
func (s *Store) release(p *Pending, jobs []int) {
	for _, i := range jobs {
		if j := &p.jobs[i]; j.slab != nil {
			s.unref(j.slab)
			j.slab, j.value = nil, nil
		}
	}
}
