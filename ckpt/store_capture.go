package ckpt

import (
	"bytes"
	"fmt"
	"math"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
)

// keyState is what the store remembers of one Key between captures.
type keyState struct {
	capMu sync.Mutex // serialises Captures of the key (until they return) and Deletes

	mu     sync.Mutex // guards loaded and base; a commit holds it through its transaction
	loaded bool
	base   *baseState // last durable capture, nil if none usable

	linkMu sync.Mutex // guards last and scan, never held for long
	last   *Pending   // last capture handed to the writer
	scan   *scanLink  // the last capture's memory, for the next one's Dirty hint; nil: none usable
}

// scanLink is what a capture's memory hashed to, for the next capture's
// Dirty hint. A copy-on-write capture hashes after Capture returned, so
// the next capture may be taken before its hashes are known: it works out
// what it needs from its hint alone, and takes the hashes of the chunks
// not written since once they are known (resolve).
type scanLink struct {
	mark   uint64 // the capture's Dirty.Mark (0: none)
	size   int
	done   chan struct{} // closed once hashes is set
	hashes []Hash
}

// known returns what a capture of mem with hint d may take from the key's
// last capture, or nil if it must hash everything. The caller holds
// ks.capMu.
func (ks *keyState) known(d *Dirty, mem []byte, cs int) *known {
	ks.linkMu.Lock()
	l := ks.scan
	ks.linkMu.Unlock()
	if d == nil || d.Since == 0 || l == nil || d.Since != l.mark || len(mem) < l.size {
		return nil
	}
	n := int(chunkCount(uint64(len(mem)), cs))
	kn := &known{link: l, written: make([]bool, n)}
	// A chunk that was partial or absent in the last capture is new.
	for i := l.size / cs; i < n; i++ {
		kn.written[i] = true
	}
	for _, r := range d.Ranges {
		if r[1] <= r[0] {
			continue
		}
		for i := r[0] / uint64(cs); i <= (r[1]-1)/uint64(cs) && i < uint64(n); i++ {
			kn.written[i] = true
		}
	}
	return kn
}

// dropScan makes the key's next capture hash all of memory: a capture
// failed to be written, so the chunks that later captures took as
// unchanged from it may be missing from the store.
func (ks *keyState) dropScan() {
	ks.linkMu.Lock()
	ks.scan = nil
	ks.linkMu.Unlock()
}

// baseState is an immutable record of a durable capture that the next
// capture of the same key is compared against.
type baseState struct {
	epoch     uint64
	chunkSize int
	mem       []Hash
	files     []Hash
	stored    uint64 // the manifest's StoredBytes
	sum       uint64 // the manifest's checksum, to recognise it in the store
}

func newBaseState(m *Manifest) *baseState {
	return &baseState{epoch: m.Epoch, chunkSize: int(m.ChunkSize), mem: m.Chunks, files: m.FileChunks,
		stored: m.StoredBytes, sum: m.Sum}
}

func (s *Store) keyState(k Key) *keyState {
	s.mu.Lock()
	defer s.mu.Unlock()
	ks := s.keys[k]
	if ks == nil {
		ks = &keyState{}
		s.keys[k] = ks
	}
	return ks
}

// currentBase returns the key's last durable capture, loading it from the
// newest manifest on first use, and pins its epoch (see pin).
func (s *Store) currentBase(k Key, ks *keyState) *baseState {
	ks.mu.Lock()
	defer ks.mu.Unlock()
	if !ks.loaded {
		ks.loaded, ks.base = true, s.loadBase(k)
	}
	if ks.base != nil {
		s.mu.Lock()
		s.pinned[pin{k, ks.base.epoch}]++
		s.mu.Unlock()
	}
	return ks.base
}

func (s *Store) loadBase(k Key) *baseState {
	var b *baseState
	_ = s.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketManifests).Cursor()
		last := manifestKey(k, math.MaxUint64)
		key, v := c.Seek(last)
		if !bytes.Equal(key, last) {
			key, v = c.Prev()
		}
		if key == nil || !bytes.HasPrefix(key, last[:len(last)-8]) || len(key) != len(last) {
			return nil
		}
		m, err := decodeManifest(v)
		if err != nil || int(m.ChunkSize) != s.cfg.ChunkSize {
			return nil
		}
		b = newBaseState(m)
		return nil
	})
	return b
}

// Capture snapshots a paused guest. It hashes mem, copies the non-zero
// chunks that differ from the key's last durable capture and returns; mem
// may change as soon as it returns. Compression and the durable write go on
// in the background: see Pending.
//
// If meta.Dirty.Frozen is set, mem is a copy-on-write snapshot that is
// still being copied: Capture only tells it which chunks it needs and
// returns; hashing and copying go on in the background as the chunks
// arrive. The key's next Capture does not wait for them: it says what it
// needs from its own hint, and takes this one's hashes when they are
// known.
func (s *Store) Capture(meta Meta, mem []byte) (*Pending, error) {
	start := time.Now()
	var fz Frozen
	if meta.Dirty != nil {
		fz = meta.Dirty.Frozen
	}
	if len(meta.Job) > math.MaxUint16 {
		if fz != nil {
			fz.Done()
		}
		return nil, fmt.Errorf("ckpt: job name is %d bytes, at most %d allowed", len(meta.Job), math.MaxUint16)
	}
	s.closeMu.RLock()
	closed := s.closed
	s.closeMu.RUnlock()
	if closed {
		if fz != nil {
			fz.Done()
		}
		return nil, ErrClosed
	}
	bad := s.badSnapshot()
	ks := s.keyState(meta.Key)
	ks.capMu.Lock()
	defer ks.capMu.Unlock()

	p := &Pending{
		s:          s,
		compressed: make(chan struct{}),
		done:       make(chan struct{}),
	}
	m := &Manifest{Meta: meta, Format: FormatVersion, MemSize: uint64(len(mem)), ChunkSize: uint32(s.cfg.ChunkSize)}
	m.Dirty, m.HostLater = nil, nil
	p.hostLater = meta.HostLater
	m.Globals = append([]uint64(nil), meta.Globals...)
	m.Asyncify = cloneBytes(meta.Asyncify)
	m.Host = cloneBytes(meta.Host)
	if m.Created.IsZero() {
		m.Created = start
	}
	m.Created = m.Created.Round(0)

	cs := s.cfg.ChunkSize
	kn := ks.known(meta.Dirty, mem, cs)
	if fz != nil && len(bad) > 0 {
		kn = nil // a damaged chunk is copied again, which needs its bytes
	}
	link := &scanLink{size: len(mem), done: make(chan struct{})}
	if meta.Dirty != nil {
		link.mark = meta.Dirty.Mark
	}
	var st Stats
	var fileJobs []chunkJob
	var baseMem []Hash
	files := meta.Files
	chunked := len(files) > filesInlineMax
	if fz != nil {
		// A chunk not needed counts as processed at once; a needed one,
		// or one of the file blob's, may have a job.
		need := make([]bool, chunkCount(uint64(len(mem)), cs))
		slots := 0
		var skipped int64
		for i := range need {
			need[i] = kn == nil || i >= len(kn.written) || kn.written[i]
			if need[i] {
				slots++
			} else {
				skipped += int64(min(cs, len(mem)-i*cs))
			}
		}
		fz.Need(cs, need)
		if chunked {
			files = cloneBytes(files) // scanned after Capture returns
			slots += int(chunkCount(uint64(len(files)), cs))
		}
		p.stream = newStream(s, p, fz, slots)
		p.progress.Store(skipped)
	}
	// prepare chooses the base (the last durable capture, which a commit
	// under way may replace: it holds ks.mu meanwhile) and scans the
	// file blob against it.
	prepare := func() {
		p.base = s.currentBase(meta.Key, ks)
		var baseFiles []Hash
		if b := p.base; b != nil && b.chunkSize == s.cfg.ChunkSize {
			baseMem, baseFiles = b.mem, b.files
		}
		if chunked {
			fs := s.scan(files, baseFiles, bad, nil, nil)
			m.Files, m.FileChunks, m.FilesLen = nil, fs.hashes, uint64(len(files))
			fileJobs = fs.jobs
			st.BytesCopied += fs.copied
		}
	}
	if !chunked {
		m.Files = cloneBytes(files)
	}
	p.m = m
	p.total = int64(len(mem))
	if chunked {
		p.total += int64(len(files))
	}
	// scanned completes the capture once mem is hashed and copied.
	scanned := func(sc scanResult) {
		m.Chunks = sc.hashes
		p.jobs = s.dedupe(append(sc.jobs, fileJobs...))
		p.ready = make(chan int, len(p.jobs))
		skipped := p.total
		for _, j := range p.jobs {
			skipped -= int64(j.rawLen())
		}
		p.progress.Store(skipped)
		st.Chunks, st.Zero, st.Changed, st.Hashed = len(sc.hashes), sc.zero, sc.changed, sc.hashed
		st.BytesCopied += sc.copied
		s.startCompress(p)
		link.hashes = m.Chunks
		close(link.done)
	}
	ks.linkMu.Lock()
	ks.scan = link
	ks.linkMu.Unlock()
	if fz == nil {
		prepare()
		kn.resolve()
		scanned(s.scan(mem, baseMem, bad, kn, nil))
		st.PauseDur = time.Since(start)
		p.stats = st
	} else {
		// The guest goes on. The next capture of the key may be taken
		// before this one is hashed: it takes this one's hashes from
		// link once they are known (known.fill).
		st.CopyOnWrite = true
		st.PauseDur = time.Since(start)
		p.early = st
		p.scanned = make(chan struct{})
		sm := p.stream
		go func() {
			// The base is chosen here, so that the pause does not wait
			// for a commit of the key under way. The chunks written
			// since the last capture are scanned first, then the
			// others' hashes from that capture once known. The changed
			// chunks are compressed as they are read and handed to the
			// writer at once, so the snapshot is done with once
			// scanned, and the disk writes while the scan goes on.
			sm.open()
			prepare()
			if chunked {
				sm.addFiles(s, fileJobs, len(files))
			}
			sc := s.scan(mem, baseMem, bad, kn, sm)
			s.encodeFiles(sm) // if memory had no chunk, and so no scan goroutine
			fz.Done()
			kn.fill(&sc, baseMem)
			m.Chunks = sc.hashes
			st.Chunks, st.Zero, st.Changed, st.Hashed = len(sc.hashes), sc.zero, sc.changed, sc.hashed
			st.PauseDur = p.early.PauseDur
			p.stats = st
			link.hashes = m.Chunks
			close(link.done)
			close(p.scanned)
			p.endCompress()
		}()
	}
	p.captured = time.Now()

	if err := s.enqueue(p); err != nil {
		s.unpin(p)
		if p.stream != nil {
			p.stream.setState(streamDone) // no writer will come: the scan must not wait for one
		}
		return nil, err
	}
	ks.linkMu.Lock()
	ks.last = p
	ks.linkMu.Unlock()
	return p, nil
}

func cloneBytes(b []byte) []byte {
	if b == nil {
		return nil
	}
	return append(make([]byte, 0, len(b)), b...)
}

// dedupe drops copies of a chunk that occurs more than once.
func (s *Store) dedupe(jobs []chunkJob) []chunkJob {
	if len(jobs) < 2 {
		return jobs
	}
	seen := make(map[Hash]struct{}, len(jobs))
	out := jobs[:0]
	for _, j := range jobs {
		if _, ok := seen[j.hash]; ok {
			s.bufs.put(j.buf)
			continue
		}
		seen[j.hash] = struct{}{}
		out = append(out, j)
	}
	return out
}

// enqueue hands p to the writer. It holds closeMu (not mu, which the
// writer takes) so that a full queue cannot deadlock.
func (s *Store) enqueue(p *Pending) error {
	s.closeMu.RLock()
	defer s.closeMu.RUnlock()
	if s.closed {
		return ErrClosed
	}
	s.writeq <- p
	return nil
}

// pin names an epoch that a queued capture relies on: its unchanged chunks
// are those of that epoch, so Keep must not drop it before the capture is
// committed.
type pin struct {
	k     Key
	epoch uint64
}

func (s *Store) unpin(p *Pending) {
	if p.base == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	pn := pin{p.m.Key, p.base.epoch}
	if s.pinned[pn]--; s.pinned[pn] <= 0 {
		delete(s.pinned, pn)
	}
}

// KeepFrom says that epoch is the job's newest committed epoch: the Keep
// rule then drops no epoch of the job's keys from it on (a rollback goes
// back to it), nor, with Keep 2 or more, from the committed epoch before
// it that this store was told of (a resume that finds the newest one
// damaged falls back to it). With checkpoint rounds under way, and
// abandoned ones not yet dropped, more than Keep epochs of a key may be
// newer than those: with two rounds under way, Keep 3 would otherwise
// drop the epoch before the newest committed one as the second round is
// written. Only a later epoch moves it.
func (s *Store) KeepFrom(job string, epoch uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	cs := s.commits[job]
	if epoch == 0 || len(cs) > 0 && epoch <= cs[len(cs)-1] {
		return
	}
	cs = append(cs, epoch)
	if n := min(s.cfg.Keep, 2); len(cs) > n {
		cs = cs[len(cs)-n:]
	}
	s.commits[job] = cs
}

// isPinned reports whether a capture other than p relies on epoch e of k,
// or e is at or after the floor of k's job (KeepFrom).
func (s *Store) isPinned(p *Pending, k Key, e uint64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if cs := s.commits[k.Job]; len(cs) > 0 && e >= cs[0] {
		return true
	}
	n := s.pinned[pin{k, e}]
	if p.base != nil && p.base.epoch == e && p.m.Key == k {
		n--
	}
	return n > 0
}
