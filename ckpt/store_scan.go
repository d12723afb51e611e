package ckpt

import (
	"bytes"
	"sync"
)

// chunkJob is one chunk copied during a capture, on its way to the store.
type chunkJob struct {
	hash  Hash
	buf   []byte // chunkHeaderLen spare bytes, then the raw chunk
	src   []byte // instead of buf: the raw chunk in a copy-on-write snapshot, read where it is
	value []byte // the stored value once encoded (buf itself, or a pool buffer)
	raw   int    // raw length
}

// rawLen is the length of the job's raw chunk.
func (j *chunkJob) rawLen() int {
	if j.src != nil {
		return len(j.src)
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
// that runs while the guest is paused, unless wait is set: then data is a
// copy-on-write snapshot, and wait(i) blocks until piece i is copied.
func (s *Store) scan(data []byte, base []Hash, bad map[Hash]struct{}, kn *known, wait func(i int)) scanResult {
	cs := s.cfg.ChunkSize
	n := int(chunkCount(uint64(len(data)), cs))
	res := scanResult{hashes: make([]Hash, n)}
	w := s.cfg.Workers
	if w > n {
		w = n
	}
	if w <= 1 {
		s.scanRange(data, base, bad, kn, wait, 0, n, &res)
		return res
	}
	parts := make([]scanResult, w)
	var wg sync.WaitGroup
	for i := range w {
		parts[i].hashes = res.hashes
		wg.Add(1)
		go func() {
			defer wg.Done()
			if wait == nil {
				s.scanRange(data, base, bad, kn, nil, i*n/w, (i+1)*n/w, &parts[i])
				return
			}
			// A snapshot is copied from its start: the workers take
			// turns along it rather than halves of it.
			for lo := i * scanStride; lo < n; lo += w * scanStride {
				s.scanRange(data, base, bad, kn, wait, lo, min(lo+scanStride, n), &parts[i])
			}
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

// scanStride is how many chunks a worker scans of a copy-on-write snapshot
// before the next worker's turn.
const scanStride = 32

func (s *Store) scanRange(data []byte, base []Hash, bad map[Hash]struct{}, kn *known, wait func(int), lo, hi int, res *scanResult) {
	cs := s.cfg.ChunkSize
	for i := lo; i < hi; i++ {
		off := i * cs
		c := data[off:min(off+cs, len(data))]
		if wait != nil && kn.unwritten(i) {
			continue // not in the snapshot: see known.fill
		}
		h, ok := kn.hash(i)
		if !ok {
			if wait != nil {
				wait(i)
			}
			res.hashed++
			if bytes.Equal(c, s.zero[:len(c)]) {
				h = Hash{}
			} else {
				h = hashOf(c)
			}
		}
		res.hashes[i] = h
		if h == (Hash{}) {
			res.zero++
			continue
		}
		if i < len(base) && base[i] == h {
			if _, isBad := bad[h]; !isBad {
				continue
			}
		}
		res.changed++
		if wait != nil {
			// The snapshot holds it until compressed: no copy.
			res.jobs = append(res.jobs, chunkJob{hash: h, src: c})
			continue
		}
		buf := s.bufs.get()[:chunkHeaderLen+len(c)]
		copy(buf[chunkHeaderLen:], c)
		res.jobs = append(res.jobs, chunkJob{hash: h, buf: buf})
		res.copied += int64(len(c))
	}
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
