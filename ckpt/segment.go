package ckpt

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"sync"

	bolt "go.etcd.io/bbolt"
)

// Chunk values live outside bbolt, in segment files in the directory
// beside the bbolt file (<path>.seg/000001, 000002, ...). A capture writes
// its new values into the current segment, in the room freed there
// (segment_spare.go) and then at its end, with one vectored write per run,
// straight from the compressors' buffers, and syncs them before the bbolt
// transaction that references them. That transaction
// records each value's segment, offset and length in the refs bucket and
// the segment's new length in the segments bucket; a value counts only
// once it is committed. Open truncates every segment to its committed
// length, dropping what a failed or interrupted capture appended.
//
// A value whose last reference a transaction drops is freed once that
// transaction has committed: in the current segment its range goes on the
// spare list, in an older one it is punched out of the file
// (FALLOC_FL_PUNCH_HOLE). A crash in between leaks only the space, until
// Open rebuilds the spare list from the gaps between referenced values and
// punches out older segments' gaps. A segment left with no referenced
// value is deleted, unless captures still write to it; captures move on to
// a new segment once the current one is past segmentMax.

// bucketSegments maps a segment number (u32 big-endian) to its committed
// length (u64 big-endian).
var bucketSegments = []byte("segments")

// segmentMax is the size past which captures start a new segment.
var segmentMax int64 = 4 << 30

// extent is a byte range [off, end) of a segment.
type extent struct{ off, end int64 }

// segments is the set of a store's segment files.
type segments struct {
	dir    string
	noSync bool

	// readMu is held for reading by every reader of values from before
	// its bbolt transaction begins until it has read them, and for writing
	// while values are freed or segments removed: a value is never freed
	// under a reader that can still see its reference.
	readMu sync.RWMutex

	mu    sync.Mutex
	files map[uint32]*os.File
	live  map[uint32]int64 // bytes of the values that may be referenced
	cur   uint32           // the segment captures write to; 0 before the first
	last  uint32           // highest segment number ever seen
	spare []extent         // free ranges of cur, in order (segment_spare.go)

	// The replica segment (segment_replica.go): rep and repEnd are
	// guarded by mu; repMu is held while one is chosen or started.
	repMu    sync.Mutex
	rep      uint32         // 0 before the first replica
	repEnd   int64          // its length, with what is not committed yet
	repUsers map[uint32]int // replicas writing to a segment

	// The puncher goroutine frees what freeLater queues, so that neither
	// the writer nor Delete waits for readers or for the file system.
	freeMu      sync.Mutex // held while queueing, so that close does not close frees under a sender
	closed      bool       // guarded by freeMu
	shut        bool       // the files are closed; guarded by mu
	frees       chan []chunkLoc
	freeing     sync.WaitGroup // queued batches not yet freed
	puncherDone chan struct{}

	// Owned by the writer goroutine.
	curFile   *os.File
	end       int64    // cur's length, with what is not committed yet
	synced    int64    // how much of cur is known durable
	committed int64    // cur's length as last committed
	pending   int64    // bytes of values written since the last commit
	taken     []extent // spare ranges used since the last commit
}

func segmentKey(id uint32) []byte { return binary.BigEndian.AppendUint32(nil, id) }

func (sg *segments) path(id uint32) string { return SegmentFile(sg.dir, id) }

func parseSegmentName(name string) (uint32, bool) {
	if len(name) != 6 {
		return 0, false
	}
	id, err := strconv.ParseUint(name, 10, 32)
	return uint32(id), err == nil && id > 0
}

// openSegments opens the segments in dir inside Open's transaction: it
// truncates each to its committed length, makes the ranges no reference
// covers the current segment's spare list (and punches them out of older
// ones), and removes the segments (files and entries) no reference uses.
func openSegments(tx *bolt.Tx, dir string, noSync bool) (*segments, error) {
	b, err := tx.CreateBucketIfNotExists(bucketSegments)
	if err != nil {
		return nil, err
	}
	sg := &segments{dir: dir, noSync: noSync, files: make(map[uint32]*os.File), live: make(map[uint32]int64),
		repUsers: make(map[uint32]int), frees: make(chan []chunkLoc, 64), puncherDone: make(chan struct{})}
	go sg.puncher()
	lengths := make(map[uint32]int64)
	if err := b.ForEach(func(k, v []byte) error {
		if len(k) == 4 && len(v) == 8 {
			id := binary.BigEndian.Uint32(k)
			lengths[id] = int64(binary.BigEndian.Uint64(v))
			sg.last = max(sg.last, id)
		}
		return nil
	}); err != nil {
		return nil, err
	}
	live, err := segmentExtents(tx)
	if err != nil {
		return nil, err
	}
	// A value is recorded in the transaction that records its segment's
	// length past it: a value past the length means the length is
	// damaged, and cutting or appending there would destroy values.
	for id, xs := range live {
		if n, ok := lengths[id]; ok {
			for _, x := range xs {
				n = max(n, x.end)
			}
			lengths[id] = n
		}
	}
	entries, err := os.ReadDir(dir)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("read segment directory: %w", err)
	}
	for _, e := range entries {
		id, ok := parseSegmentName(e.Name())
		if !ok {
			continue
		}
		sg.last = max(sg.last, id)
		if err := sg.openOne(id, lengths, live[id]); err != nil {
			sg.close()
			return nil, err
		}
	}
	for id := range lengths {
		if len(live[id]) == 0 {
			if err := b.Delete(segmentKey(id)); err != nil {
				sg.close()
				return nil, err
			}
		}
	}
	for id, f := range sg.files {
		if _, recorded := lengths[id]; recorded && id > sg.cur {
			sg.cur, sg.curFile = id, f
		}
	}
	sg.end, sg.synced, sg.committed = lengths[sg.cur], lengths[sg.cur], lengths[sg.cur]
	for id, f := range sg.files {
		n, recorded := lengths[id]
		switch {
		case overlapping(live[id]):
			// Values never share bytes: a damaged index entry points
			// into another value, and the entry's own value lies in
			// what looks free. Nothing of this segment is freed, so
			// that Repair may find the value's older entry.
		case id == sg.cur:
			sg.spare = gaps(live[id], n)
		case recorded:
			if dead, err := unreferenced(f, live[id], n); err == nil { // else no hole support: the space stays
				for _, x := range dead {
					_ = punch(f, x.off, x.end-x.off)
				}
			}
		}
	}
	return sg, nil
}

// overlapping reports whether any two of xs (in order) share bytes.
func overlapping(xs []extent) bool {
	for i := 1; i < len(xs); i++ {
		if xs[i].off < xs[i-1].end {
			return true
		}
	}
	return false
}

// openOne opens segment id at Open and truncates it to its committed
// length, or removes it if no reference names it; live lists its
// referenced values in order.
func (sg *segments) openOne(id uint32, lengths map[uint32]int64, live []extent) error {
	path := sg.path(id)
	if len(live) == 0 {
		if err := os.Remove(path); err != nil {
			return fmt.Errorf("remove unused segment: %w", err)
		}
		return nil
	}
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("open segment: %w", err)
	}
	sg.files[id] = f
	for _, x := range live {
		sg.live[id] += x.end - x.off
	}
	n, recorded := lengths[id]
	if !recorded {
		return nil
	}
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("open segment: %w", err)
	}
	if fi.Size() > n {
		if err := f.Truncate(n); err != nil {
			return fmt.Errorf("truncate segment %s to its committed length: %w", path, err)
		}
	}
	return nil
}

// segmentExtents lists the referenced values of each segment, in order.
func segmentExtents(tx *bolt.Tx) (map[uint32][]extent, error) {
	out := make(map[uint32][]extent)
	err := tx.Bucket(bucketRefs).ForEach(func(_, v []byte) error {
		if r, ok := decodeRef(v); ok && r.seg != 0 {
			out[r.seg] = append(out[r.seg], extent{int64(r.off), int64(r.off + r.size)})
		}
		return nil
	})
	for _, xs := range out {
		sortExtents(xs)
	}
	return out, err
}

// begin readies the current segment for a capture's values, starting a
// new one if there is none or it is past segmentMax. Writer only.
func (sg *segments) begin() error {
	if sg.curFile != nil && sg.end < segmentMax {
		return nil
	}
	id, f, err := sg.create()
	if err != nil {
		return err
	}
	sg.readMu.Lock() // the puncher may be punching old
	sg.mu.Lock()
	old, oldFile, spare := sg.cur, sg.curFile, sg.spare
	sg.files[id], sg.cur, sg.spare = f, id, nil
	sg.curFile, sg.end, sg.synced, sg.committed = f, 0, 0, 0
	if oldFile != nil {
		for _, x := range spare {
			_ = punch(oldFile, x.off, x.end-x.off)
		}
	}
	sg.removeIfDead(old)
	sg.mu.Unlock()
	sg.readMu.Unlock()
	return nil
}

// create makes a new, empty segment file, durably named, with the next
// number: taken at once, so that a capture's and a replica's new segments
// started at the same time have different ones.
func (sg *segments) create() (uint32, *os.File, error) {
	if err := os.MkdirAll(sg.dir, 0o755); err != nil {
		return 0, nil, fmt.Errorf("create segment directory: %w", err)
	}
	sg.mu.Lock()
	sg.last++
	id := sg.last
	sg.mu.Unlock()
	f, err := os.OpenFile(sg.path(id), os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return 0, nil, fmt.Errorf("create segment: %w", err)
	}
	if !sg.noSync {
		if err := syncDir(sg.dir); err != nil {
			f.Close()
			os.Remove(sg.path(id))
			return 0, nil, err
		}
	}
	return id, f, nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync segment directory: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync segment directory: %w", err)
	}
	return nil
}

// record writes the current segment's new length into tx, if a capture
// appended to it. Writer only.
func (sg *segments) record(tx *bolt.Tx) error {
	if sg.curFile == nil || sg.end == sg.committed {
		return nil
	}
	return tx.Bucket(bucketSegments).Put(segmentKey(sg.cur), binary.BigEndian.AppendUint64(nil, uint64(sg.end)))
}

// commit is called once the transaction that recorded the values written
// since the last commit has committed. Writer only.
func (sg *segments) commit() {
	sg.mu.Lock()
	sg.live[sg.cur] += sg.pending
	sg.mu.Unlock()
	sg.committed, sg.pending, sg.taken = sg.end, 0, nil
}

// rollback drops what was written since the last commit: it cuts what was
// appended and returns the spare ranges used. Writer only.
func (sg *segments) rollback() {
	if sg.end != sg.committed {
		_ = sg.curFile.Truncate(sg.committed) // if this fails, Open truncates
		sg.end, sg.synced = sg.committed, min(sg.synced, sg.committed)
	}
	sg.mu.Lock()
	sg.addSpare(sg.taken)
	sg.mu.Unlock()
	sg.pending, sg.taken = 0, nil
}

// freeLater queues values to be freed; call it once the transaction that
// dropped their last references has committed. A value left (by a crash,
// or a failure) only takes space until the next Open.
func (sg *segments) freeLater(locs []chunkLoc) {
	if len(locs) == 0 {
		return
	}
	sg.freeMu.Lock()
	defer sg.freeMu.Unlock()
	if sg.closed {
		return
	}
	sg.freeing.Add(1)
	sg.frees <- locs
}

func (sg *segments) puncher() {
	defer close(sg.puncherDone)
	for locs := range sg.frees {
		sg.free(locs)
		sg.freeing.Done()
	}
}

// free adds the values of the current segment to its spare list, punches
// those of older segments out of their files and removes the segments left
// with no referenced value. Puncher only.
//
// Taking readMu for writing waits for the readers that may still see the
// values' references (they began their transactions before the commit
// that dropped them); a reader that takes it later sees the commit. So the
// punches themselves hold no lock: a reader, a replica's writes or a
// commit do not wait for the file system's punches (which write back the
// dirty pages around them).
func (sg *segments) free(locs []chunkLoc) {
	type hole struct {
		f *os.File
		x extent
	}
	var holes []hole
	sg.readMu.Lock()
	sg.mu.Lock()
	byFile := make(map[uint32][]extent)
	for _, l := range locs {
		if sg.files[l.seg] != nil {
			byFile[l.seg] = append(byFile[l.seg], extent{int64(l.off), int64(l.off + l.size)})
			sg.live[l.seg] -= int64(l.size)
		}
	}
	for id, xs := range byFile {
		if id == sg.cur {
			sg.addSpare(xs)
			continue
		}
		if sg.removeIfDead(id) {
			continue
		}
		// Neighbours freed together are punched as one range, so that
		// the blocks they share are freed too. A block shared with a
		// value freed at another time stays allocated, as zeros, until
		// the segment is removed (or Open finds it in a wider gap).
		sortExtents(xs)
		run := xs[0]
		for _, x := range xs[1:] {
			if x.off <= run.end {
				run.end = max(run.end, x.end)
				continue
			}
			holes = append(holes, hole{sg.files[id], run})
			run = x
		}
		holes = append(holes, hole{sg.files[id], run})
	}
	sg.mu.Unlock()
	sg.readMu.Unlock()
	// The files stay open meanwhile: only the puncher removes an older
	// segment that holds committed values (begin removes the segment
	// captures wrote to before, which is not one of these; a replica
	// that gives its room back removes a replica segment only if nothing
	// was ever committed in it), and close waits for the puncher.
	for _, h := range holes {
		if fail("segment:punch") == nil {
			_ = punch(h.f, h.x.off, h.x.end-h.x.off)
		}
	}
}

// removeIfDead deletes segment id if none of its values is referenced and
// neither captures nor replicas append to it, and reports whether it did.
// Call with readMu and mu held.
func (sg *segments) removeIfDead(id uint32) bool {
	f := sg.files[id]
	if f == nil || id == sg.cur || id == sg.rep || sg.repUsers[id] > 0 || sg.live[id] > 0 {
		return false
	}
	f.Close()
	os.Remove(sg.path(id))
	delete(sg.files, id)
	delete(sg.live, id)
	return true
}

func (sg *segments) close() {
	sg.freeMu.Lock()
	if !sg.closed {
		sg.closed = true
		close(sg.frees)
	}
	sg.freeMu.Unlock()
	<-sg.puncherDone
	sg.mu.Lock()
	defer sg.mu.Unlock()
	for id, f := range sg.files {
		f.Close()
		delete(sg.files, id)
	}
	sg.curFile = nil
	sg.shut = true
}
