package ckpt

import (
	"bytes"
	"sync"
)

// chunkJob is one chunk copied during a capture, on its way to the store.
type chunkJob struct {
	hash  Hash
	buf   []byte // chunkHeaderLen spare bytes, then the raw chunk
	value []byte // the stored value once encoded (buf itself, a pool buffer, or carved from slab)
	slab  *slab  // the pool buffer value is carved from (scanFrozen), nil if none
	raw   int    // raw length
	// dropped: a batch found the chunk stored by the key's newest durable
	// capture and let the value go (Store.dropStored)
	dropped bool
}

// rawLen is the length of the job's raw chunk.
func (j *chunkJob) rawLen() int {
	if j.buf == nil { // encoded as it was read (scanFrozen)
		return j.raw
	}
	return len(j.buf) - chunkHeaderLen
}

type scanResult struct {
	hashes  []Hash
	jobs    []chunkJob
	zero    int
	changed int
	hashed  int
	copied  int64
}

// known is what a scan may take as it is without hashing: the hashes of
// the key's last capture (once resolved) and, by chunk, whether it was
// written since.
type known struct {
	link    *scanLink
	hashes  []Hash
	written []bool
}

// resolve waits until the last capture's hashes are known.
func (k *known) resolve() {
	if k != nil {
		<-k.link.done
		k.hashes = k.link.hashes
	}
}

// unwritten reports whether chunk i was not written since the last
// capture.
func (k *known) unwritten(i int) bool {
	return k != nil && i < len(k.written) && !k.written[i]
}

// fill completes the scan of a copy-on-write snapshot (scanned with kn
// unresolved, so it skipped the chunks not written since the last
// capture): those chunks take the last capture's hashes, once known. They
// were not copied into the snapshot, so a chunk that differs from base is
// not copied either: the last capture stores it (or fails, and so does
// this capture's commit, with the chunk missing).
func (k *known) fill(res *scanResult, base []Hash) {
	if k == nil {
		return
	}
	k.resolve()
	for i := range res.hashes {
		if !k.unwritten(i) {
			continue
		}
		h := k.hashes[i]
		res.hashes[i] = h
		switch {
		case h == (Hash{}):
			res.zero++
		case i >= len(base) || base[i] != h:
			res.changed++
		}
	}
}

// hash returns chunk i's hash if it is known to be unchanged.
func (k *known) hash(i int) (Hash, bool) {
	if k == nil || i >= len(k.written) || k.written[i] {
		return Hash{}, false
	}
	return k.hashes[i], true
}

// scan hashes data in ChunkSize pieces on cfg.Workers goroutines and copies
// the non-zero pieces whose hash differs from base (or is in bad). Pieces
// that kn says are unchanged are not hashed. It is the part of a capture
// that runs while the guest is paused, unless st is set: then data is a
// copy-on-write snapshot, read through st.fz, whose values go to the
// writer as they are made (scanFrozen).
func (s *Store) scan(data []byte, base []Hash, bad map[Hash]struct{}, kn *known, st *valueStream) scanResult {
	cs := s.cfg.ChunkSize
	n := int(chunkCount(uint64(len(data)), cs))
	res := scanResult{hashes: make([]Hash, n)}
	w := s.cfg.Workers
	if w > n {
		w = n
	}
	if w <= 1 && st == nil {
		s.scanRange(data, base, bad, kn, 0, n, &res)
		return res
	}
	parts := make([]scanResult, w)
	var wg sync.WaitGroup
	for i := range w {
		parts[i].hashes = res.hashes
		wg.Add(1)
		go func() {
			defer wg.Done()
			if st == nil {
				s.scanRange(data, base, bad, kn, i*n/w, (i+1)*n/w, &parts[i])
				return
			}
			s.scanFrozen(st, base, bad, kn, &parts[i])
		}()
	}
	wg.Wait()
	for _, p := range parts {
		res.jobs = append(res.jobs, p.jobs...)
		res.zero += p.zero
		res.changed += p.changed
		res.hashed += p.hashed
		res.copied += p.copied
	}
	return res
}

func (s *Store) scanRange(data []byte, base []Hash, bad map[Hash]struct{}, kn *known, lo, hi int, res *scanResult) {
	cs := s.cfg.ChunkSize
	for i := lo; i < hi; i++ {
		off := i * cs
		c := data[off:min(off+cs, len(data))]
		h, ok := kn.hash(i)
		if !ok {
			res.hashed++
			h = s.hashChunk(c)
		}
		if !res.store(i, h, base, bad) {
			continue
		}
		buf := s.bufs.get()[:chunkHeaderLen+len(c)]
		copy(buf[chunkHeaderLen:], c)
		res.jobs = append(res.jobs, chunkJob{hash: h, buf: buf})
		res.copied += int64(len(c))
	}
}

// hashChunk returns c's hash, the zero Hash if c is all zero.
func (s *Store) hashChunk(c []byte) Hash {
	if bytes.Equal(c, s.zero[:len(c)]) {
		return Hash{}
	}
	return hashOf(c)
}

// store records chunk i's hash h and reports whether the chunk is to be
// stored: not zero, and differing from base (or in bad).
func (res *scanResult) store(i int, h Hash, base []Hash, bad map[Hash]struct{}) bool {
	res.hashes[i] = h
	if h == (Hash{}) {
		res.zero++
		return false
	}
	if i < len(base) && base[i] == h {
		if _, isBad := bad[h]; !isBad {
			return false
		}
	}
	res.changed++
	return true
}

// scanFrozen scans the ranges of chunks a copy-on-write snapshot hands
// out (Frozen.Next: the ones the guest waits for first), on one of the
// scan's goroutines. Each needed chunk is copied out of the snapshot into
// one buffer, hashed and, if changed, compressed at once into the pool's
// buffers (carve) and handed to the writer (valueStream.publish): the snapshot
// gives each block back as soon as it is read, and nothing holds more
// than the compressed values not yet written. Then it encodes the file
// blob's chunks with the other scan goroutines.
func (s *Store) scanFrozen(st *valueStream, base []Hash, bad map[Hash]struct{}, kn *known, res *scanResult) {
	cs := s.cfg.ChunkSize
	raw, scratch := s.bufs.get(), s.bufs.get()
	defer s.bufs.put(raw)
	defer s.bufs.put(scratch)
	var cur *slab
	for {
		lo, hi := st.fz.Next(cs)
		if lo >= hi {
			break
		}
		for i := lo; i < hi && i < len(res.hashes); i++ {
			if kn.unwritten(i) {
				continue // not in the snapshot: see known.fill
			}
			c := st.fz.Read(raw[:cs], i, cs)
			res.hashed++
			h := s.hashChunk(c)
			if !res.store(i, h, base, bad) || !st.claim(h) {
				st.p.progress.Add(int64(len(c)))
				continue
			}
			j := chunkJob{hash: h, raw: len(c)}
			j.value, j.slab, cur = s.carve(cur, encodeChunkFrom(s.enc, c, scratch))
			st.publish(j)
			st.p.progress.Add(int64(len(c)))
			st.wait()
		}
	}
	s.unref(cur)
	s.encodeFiles(st)
}

func (s *Store) badSnapshot() map[Hash]struct{} {
	s.badMu.Lock()
	defer s.badMu.Unlock()
	if len(s.bad) == 0 {
		return nil
	}
	m := make(map[Hash]struct{}, len(s.bad))
	for h := range s.bad {
		m[h] = struct{}{}
	}
	return m
}

func (s *Store) markBad(h Hash) {
	s.badMu.Lock()
	s.bad[h] = struct{}{}
	s.badMu.Unlock()
}
