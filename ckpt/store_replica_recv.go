package ckpt

import (
	"encoding/binary"
	"errors"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
)

// ReplicaIn is a replica arriving from another host. Its values are
// checked against their hashes on worker goroutines and written to the
// replica segment (segment_replica.go) while more arrive; Commit makes the
// manifest and them durable in one commit, as a capture's, so that little
// is left to do once the last value is in:
//
//	rx, err := dst.BeginReplica(manifest)
//	for each value of rx.Chunks()[i] that arrives:
//		v, err := rx.Value(n)    // a buffer for it, once there is room
//		read the value into v
//		err = rx.Add(h, v)       // checked and written meanwhile
//	err = rx.Commit()            // or rx.Abort()
//
// Add and Value fail as soon as a value already given was refused, so
// that the caller stops reading; Commit then returns the same error and
// nothing of the replica is kept. Value and Add are called from one
// goroutine, and not after Commit or Abort has begun.
type ReplicaIn struct {
	s      *Store
	m      *Manifest
	chunks []Hash
	index  map[Hash]int // position in chunks
	maxLen int          // the longest value a chunk of m may have

	tokens chan struct{} // one per value buffer in flight
	checkq chan inValue  // to the checkers
	writeq chan inValue  // checked, to the disk writer
	checks sync.WaitGroup
	wdone  chan struct{} // closed when the disk writer is done

	mu      sync.Mutex
	err     error      // the first refusal or failure
	got     []bool     // by position in chunks: given to Add
	closed  bool       // Commit or Abort was called
	missing []Hash     // what Missing returned, if it was called
	asked   bool       // Missing was called
	base    *baseState // the key's last checkpoint here, pinned by Missing for the commit

	// Owned by the disk writer until wdone is closed.
	w    *repWriter
	jobs []chunkJob
	locs []chunkLoc
}

// inValue is a value on its way through a ReplicaIn.
type inValue struct {
	h      Hash
	v      []byte
	raw    int
	pooled bool // v goes back to the store's pool once written
	token  bool // v holds a token of tokens
}

// replicaInFlight bounds the bytes of values a ReplicaIn holds that are
// not written yet.
const replicaInFlight = 32 << 20

// replicaBatch is the most bytes of values the disk writer writes at once.
const replicaBatch = 4 << 20

// BeginReplica starts receiving a replica whose manifest (as the source
// stores it, ReplicaOf) is given.
func (s *Store) BeginReplica(manifest []byte) (*ReplicaIn, error) {
	m, err := decodeManifest(manifest)
	if err != nil {
		return nil, err
	}
	chunks, index := distinctIndex(m)
	r := &ReplicaIn{s: s, m: m, chunks: chunks, index: index,
		maxLen: chunkHeaderLen + int(m.ChunkSize), got: make([]bool, len(chunks)),
		checkq: make(chan inValue, 64), writeq: make(chan inValue, 256), wdone: make(chan struct{})}
	r.tokens = make(chan struct{}, max(4, replicaInFlight/r.maxLen))
	workers := min(s.cfg.Workers, 4)
	r.checks.Add(workers)
	for range workers {
		go r.checker()
	}
	go r.writer()
	return r, nil
}

// Chunks lists the distinct chunks the manifest uses, in the order the
// source's ReplicaOf lists them.
func (r *ReplicaIn) Chunks() []Hash { return r.chunks }

// Key and Epoch identify the checkpoint.
func (r *ReplicaIn) Key() Key      { return r.m.Key }
func (r *ReplicaIn) Epoch() uint64 { return r.m.Epoch }

// Missing returns the chunks of the manifest that the store holds no
// sound value of, in the order of Chunks: those the source must send.
// Commit then checks that each of them was given, without looking them
// up again (a chunk held now and dropped before the commit fails it). A
// chunk at the same place in the key's last checkpoint here is not looked
// up: that checkpoint holds it. Call it once, before Commit.
func (r *ReplicaIn) Missing() ([]Hash, error) {
	base := r.s.currentBase(r.m.Key, r.s.keyState(r.m.Key))
	held := make([]bool, len(r.chunks))
	if base != nil && base.chunkSize == int(r.m.ChunkSize) {
		for _, l := range [][2][]Hash{{r.m.Chunks, base.mem}, {r.m.FileChunks, base.files}} {
			now, was := l[0], l[1]
			for i, h := range now[:min(len(now), len(was))] {
				if h == was[i] && !h.IsZero() {
					held[r.index[h]] = true
				}
			}
		}
	}
	bad := r.s.badSnapshot()
	var missing []Hash
	err := r.s.db.View(func(tx *bolt.Tx) error {
		if base != nil && !baseStored(tx, r.m.Key, base) {
			clear(held)
		}
		for i, h := range r.chunks {
			if _, isBad := bad[h]; isBad {
				missing = append(missing, h)
			} else if !held[i] {
				if _, ok := storedValueIn(tx, h); !ok {
					missing = append(missing, h)
				}
			}
		}
		return nil
	})
	r.mu.Lock()
	r.missing, r.asked, r.base = missing, err == nil, base
	r.mu.Unlock()
	if err != nil {
		return nil, err
	}
	return missing, nil
}

// baseStored reports whether b's manifest is still in the store as it
// was: then every chunk it uses is held.
func baseStored(tx *bolt.Tx, k Key, b *baseState) bool {
	v := tx.Bucket(bucketManifests).Get(manifestKey(k, b.epoch))
	return len(v) >= manifestTrailer && binary.LittleEndian.Uint64(v[len(v)-manifestTrailer:]) == b.sum
}

// unpinBase lets Keep drop the base Missing pinned, if no commit took it.
func (r *ReplicaIn) unpinBase() {
	if r.base != nil {
		r.s.unpin(&Pending{m: r.m, base: r.base})
		r.base = nil
	}
}

// Value returns a buffer of n bytes for the next value, once the values
// given before are written far enough that there is room. It fails if n
// cannot be a value of the manifest's chunks, or a value given before was
// refused.
func (r *ReplicaIn) Value(n int) ([]byte, error) {
	if err := r.failed(); err != nil {
		return nil, err
	}
	if n < chunkHeaderLen || n > r.maxLen {
		return nil, r.fail(epochErr(r.m.Key, r.m.Epoch, ErrCorrupt,
			"replica value of %d bytes: a chunk's value takes %d to %d", n, chunkHeaderLen, r.maxLen))
	}
	r.tokens <- struct{}{}
	if n <= r.s.bufs.size {
		return r.s.bufs.get()[:n], nil
	}
	return make([]byte, n), nil
}

// Add gives the value of chunk h, in a buffer Value returned; the
// ReplicaIn owns it from then on. A chunk given twice is kept once.
func (r *ReplicaIn) Add(h Hash, v []byte) error {
	return r.add(h, v, true)
}

func (r *ReplicaIn) add(h Hash, v []byte, ours bool) error {
	iv := inValue{h: h, v: v, pooled: ours, token: ours}
	i, ok := r.index[h]
	r.mu.Lock()
	err, dup := r.err, false
	if r.closed {
		err = errReplicaDone
	} else if ok {
		dup, r.got[i] = r.got[i], true
	}
	r.mu.Unlock()
	switch {
	case err != nil:
	case !ok:
		err = r.fail(epochErr(r.m.Key, r.m.Epoch, ErrCorrupt, "replica chunk %s is not one the manifest uses", short(h[:])))
	case !dup:
		r.checkq <- iv
		return nil
	}
	r.release(iv)
	return err
}

func (r *ReplicaIn) failed() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.err
}

// fail records the replica's first refusal and returns it.
func (r *ReplicaIn) fail(err error) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.err == nil {
		r.err = err
	}
	return r.err
}

func (r *ReplicaIn) release(iv inValue) {
	if iv.pooled {
		r.s.bufs.put(iv.v)
	}
	if iv.token {
		<-r.tokens
	}
}

// checker checks that each value decodes to its hash.
func (r *ReplicaIn) checker() {
	defer r.checks.Done()
	raw := make([]byte, r.m.ChunkSize)
	scratch := r.s.scratch.Get().(*[]byte)
	defer r.s.scratch.Put(scratch)
	for iv := range r.checkq {
		if r.failed() != nil {
			r.release(iv)
			continue
		}
		hd, _, err := decodeChunkHeader(iv.v, r.m.ChunkSize)
		n := int(hd.rawLen)
		if err == nil {
			err = decodeChunk(iv.v, raw[:n], iv.h, r.s.dec, *scratch)
		}
		if err != nil {
			r.fail(epochErr(r.m.Key, r.m.Epoch, ErrCorrupt, "replica chunk %s: %v", short(iv.h[:]), err))
			r.release(iv)
			continue
		}
		iv.raw = n
		r.writeq <- iv
	}
}

// writer writes the checked values to the replica segment in batches of
// what has arrived, up to replicaBatch bytes.
func (r *ReplicaIn) writer() {
	defer close(r.wdone)
	var batch []inValue
	var vals [][]byte
	for iv := range r.writeq {
		batch, vals = append(batch[:0], iv), append(vals[:0], iv.v)
		size := len(iv.v)
	more:
		for size < replicaBatch && len(batch) < maxIovecs {
			select {
			case iv, ok := <-r.writeq:
				if !ok {
					break more
				}
				batch, vals = append(batch, iv), append(vals, iv.v)
				size += len(iv.v)
			default:
				break more
			}
		}
		if err := r.writeBatch(batch, vals); err != nil {
			r.fail(epochErr(r.m.Key, r.m.Epoch, ErrWrite, "replica not written: %v", oneLine(err.Error())))
		}
		for _, iv := range batch {
			r.release(iv)
		}
	}
}

func (r *ReplicaIn) writeBatch(batch []inValue, vals [][]byte) error {
	if r.failed() != nil {
		return nil
	}
	if r.w == nil {
		w, err := r.s.segs.beginReplica()
		if err != nil {
			return err
		}
		r.w = w
	}
	offs, err := r.w.write(vals)
	if err != nil {
		return err
	}
	for k, iv := range batch {
		r.jobs = append(r.jobs, chunkJob{hash: iv.h, raw: iv.raw})
		r.locs = append(r.locs, chunkLoc{seg: r.w.id, off: uint64(offs[k]), size: uint64(len(iv.v))})
	}
	return nil
}

// errReplicaDone is a ReplicaIn used after its Commit or Abort.
var errReplicaDone = errors.New("ckpt: the replica was already committed or aborted")

// finish stops taking values and waits for those given to be checked and
// written. It returns the first refusal or failure.
func (r *ReplicaIn) finish() error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return errReplicaDone
	}
	r.closed = true
	r.mu.Unlock()
	close(r.checkq)
	r.checks.Wait()
	close(r.writeq)
	<-r.wdone
	return r.failed()
}

// Abort drops the replica: nothing of it is kept.
func (r *ReplicaIn) Abort() {
	if r.finish() == errReplicaDone {
		return
	}
	r.unpinBase()
	if r.w != nil {
		r.w.release()
	}
}

// Commit makes the replica durable, once every chunk the manifest uses was
// given or is held already; otherwise, or if a value was refused, nothing
// of it is kept.
func (r *ReplicaIn) Commit() (err error) {
	if err := r.finish(); err != nil {
		if err != errReplicaDone {
			r.unpinBase()
			if r.w != nil {
				r.w.release()
			}
		}
		return err
	}
	defer r.unpinBase() // unless the commit took it
	if r.w != nil {
		defer r.w.release()
	}
	var missing []Hash
	if r.asked {
		for _, h := range r.missing {
			if !r.got[r.index[h]] {
				missing = append(missing, h)
			}
		}
	} else {
		var lacking []Hash
		for i, h := range r.chunks {
			if !r.got[i] {
				lacking = append(lacking, h)
			}
		}
		var err error
		if missing, err = r.s.Missing(lacking); err != nil {
			return err
		}
	}
	if len(missing) > 0 {
		h := missing[0]
		return epochErr(r.m.Key, r.m.Epoch, ErrNotFound, "replica lacks chunk %s, which this store does not hold", short(h[:]))
	}
	// The values are synced while the commit is queued and its
	// transaction built; it commits once they are durable.
	r.w.startSync()
	p := &Pending{s: r.s, m: r.m, captured: time.Now(), compressed: make(chan struct{}),
		done: make(chan struct{}), foreign: true, jobs: r.jobs, locs: r.locs, rep: r.w}
	if p.locs == nil {
		p.locs = []chunkLoc{}
	}
	p.ready = make(chan int)
	close(p.compressed)
	// The key's last checkpoint here, if any, is the commit's base: the
	// stored size of the replica follows from its (storedFromBase). The
	// writer unpins it.
	p.base, r.base = r.base, nil
	if p.base == nil {
		p.base = r.s.currentBase(r.m.Key, r.s.keyState(r.m.Key))
	}
	if err := r.s.enqueue(p); err != nil {
		r.s.unpin(p)
		return err
	}
	return p.Wait()
}
