package ckpt

import (
	"encoding/binary"
	"fmt"
	"os"
	"sync"

	bolt "go.etcd.io/bbolt"
)

// A replica arriving from another host writes its values to disk while
// more arrive, before its commit, so that a large replica's writes overlap
// its transfer. It cannot write them to the current segment: the writer
// owns that one's uncommitted tail, which a failed capture cuts off
// (rollback). Replicas append to a segment of their own instead, the
// replica segment: each one reserves room at its end for a batch of
// values, writes them there with pwritev, syncs them before its commit,
// and its commit's transaction records the segment's length past them.
// A replica that fails gives its room back (cut off if it is still the
// segment's tail, else punched out). A crash leaves what no reference
// covers to Open, which truncates the segment to its recorded length and
// punches out the rest, as for any segment. Once committed, a replica
// segment is like any older segment: freed values are punched out, and it
// is deleted when none is referenced, unless replicas still write to it.
// A new replica segment is started once the current one is past
// segmentMax and no replica writes to it.

// repWriter is one replica's share of the replica segment. It is used by
// one goroutine at a time.
type repWriter struct {
	sg      *segments
	id      uint32
	f       *os.File
	end     int64    // the end of its last reservation
	xs      []extent // what it reserved, in order
	written int64    // bytes of values written

	syncDone func() error // the sync startSync began, once it is done
}

// beginReplica starts a replica's writes in the replica segment,
// starting a new one if there is none or it is past segmentMax and unused.
func (sg *segments) beginReplica() (*repWriter, error) {
	sg.repMu.Lock()
	defer sg.repMu.Unlock()
	sg.mu.Lock()
	if sg.shut {
		sg.mu.Unlock()
		return nil, ErrClosed
	}
	if sg.rep != 0 && (sg.repEnd < segmentMax || sg.repUsers[sg.rep] > 0) {
		sg.repUsers[sg.rep]++
		w := &repWriter{sg: sg, id: sg.rep, f: sg.files[sg.rep]}
		sg.mu.Unlock()
		return w, nil
	}
	sg.mu.Unlock()
	id, f, err := sg.create()
	if err != nil {
		return nil, err
	}
	sg.mu.Lock()
	if sg.shut { // closed meanwhile
		sg.mu.Unlock()
		f.Close()
		os.Remove(sg.path(id))
		return nil, ErrClosed
	}
	// The old replica segment, if any, stays until its values are freed
	// (or the next Open, if none is referenced).
	sg.files[id], sg.rep, sg.repEnd = f, id, 0
	sg.repUsers[id]++
	sg.mu.Unlock()
	return &repWriter{sg: sg, id: id, f: f}, nil
}

// write stores vals back to back at the end of the replica segment and
// returns the offset of each; failpoint "segment:write".
func (w *repWriter) write(vals [][]byte) ([]int64, error) {
	if err := fail("segment:write"); err != nil {
		return nil, err
	}
	var n int64
	for _, v := range vals {
		n += int64(len(v))
	}
	sg := w.sg
	sg.mu.Lock()
	at := sg.repEnd
	if sg.rep != w.id { // cannot happen: the segment is not replaced while in use
		sg.mu.Unlock()
		return nil, fmt.Errorf("replica segment %d was replaced while in use", w.id)
	}
	sg.repEnd += n
	sg.mu.Unlock()
	x := extent{at, at + n}
	w.end = x.end
	w.xs = append(w.xs, x)
	offs := make([]int64, len(vals))
	for i, v := range vals {
		offs[i] = at
		at += int64(len(v))
	}
	for vs, off := vals, x.off; len(vs) > 0; {
		k := min(len(vs), maxIovecs)
		next, err := pwritevFile(w.f, vs[:k], off)
		if err != nil {
			return nil, fmt.Errorf("write segment %s: %w", sg.path(w.id), err)
		}
		vs, off = vs[k:], next
	}
	w.written += n
	return offs, nil
}

// sync makes the values written durable; failpoint "segment:sync".
func (w *repWriter) sync() error {
	if len(w.xs) == 0 {
		return nil
	}
	if err := fail("segment:sync"); err != nil {
		return err
	}
	if !w.sg.noSync {
		if err := datasync(w.f); err != nil {
			return fmt.Errorf("sync segment %s: %w", w.sg.path(w.id), err)
		}
	}
	return nil
}

// startSync starts making the values written durable while the commit's
// transaction is built; synced waits for it.
func (w *repWriter) startSync() {
	if w == nil || len(w.xs) == 0 {
		return
	}
	done := make(chan error, 1)
	go func() { done <- w.sync() }()
	w.syncDone = sync.OnceValue(func() error { return <-done })
}

// synced returns the result of the sync startSync began, once it is done:
// the commit's transaction must not commit before. Nil if none began.
func (w *repWriter) synced() error {
	if w == nil || w.syncDone == nil {
		return nil
	}
	return w.syncDone()
}

// record writes the segment's length past the replica's values into the
// commit's transaction (a concurrent replica may have recorded it longer).
func (w *repWriter) record(tx *bolt.Tx) error {
	if w == nil || len(w.xs) == 0 {
		return nil
	}
	b := tx.Bucket(bucketSegments)
	k := segmentKey(w.id)
	if v := b.Get(k); len(v) == 8 && int64(binary.BigEndian.Uint64(v)) >= w.end {
		return nil
	}
	return b.Put(k, binary.BigEndian.AppendUint64(nil, uint64(w.end)))
}

// committed counts the replica's values as live once its transaction
// has committed (those it stored needlessly are freed as garbage).
func (w *repWriter) committed() {
	if w == nil {
		return
	}
	w.sg.mu.Lock()
	w.sg.live[w.id] += w.written
	w.sg.mu.Unlock()
	w.xs = nil
}

// release ends the replica's writes. If it did not commit, its room is
// given back: cut off if it is still the segment's tail, punched out
// otherwise; and a replica segment left empty is removed.
func (w *repWriter) release() {
	_ = w.synced() // no sync is left running on the room given back
	sg := w.sg
	sg.mu.Lock()
	defer sg.mu.Unlock()
	sg.repUsers[w.id]--
	if sg.repUsers[w.id] <= 0 {
		delete(sg.repUsers, w.id)
	}
	if len(w.xs) == 0 {
		return
	}
	xs := w.xs
	if sg.rep == w.id && sg.repEnd == w.end {
		// The tail is this replica's since its last value another one
		// wrote: cut that off, punch out the rest.
		i := len(xs) - 1
		for i > 0 && xs[i-1].end == xs[i].off {
			i--
		}
		if err := w.f.Truncate(xs[i].off); err == nil {
			sg.repEnd, xs = xs[i].off, xs[:i]
		}
	}
	for _, x := range xs {
		_ = punch(w.f, x.off, x.end-x.off)
	}
	w.xs = nil
	if sg.rep == w.id && sg.repEnd == 0 && sg.repUsers[w.id] == 0 && sg.live[w.id] == 0 {
		// Nothing was ever committed in it: no reference, no recorded
		// length, no reader.
		w.f.Close()
		os.Remove(sg.path(w.id))
		delete(sg.files, w.id)
		delete(sg.live, w.id)
		sg.rep = 0
	}
}
