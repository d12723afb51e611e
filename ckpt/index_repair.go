package ckpt

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"

	"github.com/klauspost/compress/zstd"
	bolt "go.etcd.io/bbolt"
)

// Repair rebuilds a damaged index. What the index holds cannot all be
// derived from the segment files (their values do not name their chunk,
// and manifests and commit records live only in the index), so Repair
// salvages: it reads every entry it can reach from either meta page, then
// every leaf page of the file whatever the tree says, keeps the manifests
// and commit records whose checksums hold and the chunk locations whose
// values in the segments decode to their content hash, and writes them to
// a fresh index. An epoch with a chunk that is not found is dropped, and a
// job epoch with a dropped worker checkpoint. The damaged file is kept as
// Path+".damaged" (or ".damaged.2", ...).

// KeyEpoch names one checkpoint.
type KeyEpoch struct {
	Key   Key
	Epoch uint64
}

// RepairResult says what Repair kept and dropped.
type RepairResult struct {
	Sound   bool       // the index was not damaged: nothing was changed
	Backup  string     // where the damaged file is now
	Kept    []KeyEpoch // epochs kept, in key and epoch order
	Dropped []error    // epochs dropped, each saying why
	Commits int        // job epoch commit records kept
	Chunks  int        // chunk values found intact and indexed
	Damage  []string   // what was unreadable in the old file
}

// Repair rebuilds the index at path (a store that is not open).
func Repair(path string) (*RepairResult, error) {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return nil, fmt.Errorf("ckpt: repair %s: %w", path, err)
	}
	defer f.Close()
	if err := lockFile(f, path); err != nil {
		return nil, err
	}
	bf, err := openBoltFile(path)
	if err != nil {
		return nil, fmt.Errorf("ckpt: repair %s: %w", path, err)
	}
	defer bf.close()
	if bf.size == 0 || checkBolt(bf) == nil {
		return &RepairResult{Sound: true}, nil
	}
	sv := salvageBolt(bf)
	res := &RepairResult{Damage: sv.damage}
	dec, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(maxChunkSize))
	if err != nil {
		return nil, fmt.Errorf("ckpt: zstd decoder: %w", err)
	}
	defer dec.Close()
	refs := sv.intactRefs(path+".seg", dec)
	res.Chunks = len(refs)

	tmp := path + ".repair"
	os.Remove(tmp)
	db, err := bolt.Open(tmp, 0o600, &bolt.Options{NoFreelistSync: true, FreelistType: bolt.FreelistMapType})
	if err != nil {
		return nil, fmt.Errorf("ckpt: repair %s: %w", path, err)
	}
	err = db.Update(func(tx *bolt.Tx) error { return sv.write(tx, refs, path+".seg", res) })
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(tmp)
		return nil, fmt.Errorf("ckpt: repair %s: write the new index: %w", path, err)
	}
	res.Backup = path + ".damaged"
	for i := 2; ; i++ {
		if _, err := os.Lstat(res.Backup); errors.Is(err, fs.ErrNotExist) {
			break
		}
		res.Backup = fmt.Sprintf("%s.damaged.%d", path, i)
	}
	if err := os.Link(path, res.Backup); err != nil {
		os.Remove(tmp)
		return nil, fmt.Errorf("ckpt: repair %s: keep the damaged file: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return nil, fmt.Errorf("ckpt: repair %s: %w", path, err)
	}
	if err := syncDir(filepath.Dir(path)); err != nil {
		return nil, err
	}
	return res, nil
}

// lockFile takes the lock bbolt takes, or fails with ErrInUse.
func lockFile(f *os.File, path string) error {
	if err := flockWait(f); err != nil {
		if errors.Is(err, ErrInUse) {
			return &storeError{kind: ErrInUse, msg: fmt.Sprintf("ckpt: store %s is in use by another process", path)}
		}
		return fmt.Errorf("ckpt: lock store %s: %w", path, err)
	}
	return nil
}

// salvage is what could be read out of a damaged bbolt file.
type salvage struct {
	manifests map[string][]byte
	commits   map[string][]byte
	refs      map[Hash][][]byte // candidates, the tree's first
	chunks    map[uint64][]byte // values of earlier versions, by sequence number
	damage    []string
}

// salvageBolt reads the trees of both meta pages (the newer first), then
// every leaf page for entries no tree reached: a damaged branch page
// hides the leaves below it from the tree walk, not from this scan.
func salvageBolt(bf *boltFile) *salvage {
	sv := &salvage{manifests: map[string][]byte{}, commits: map[string][]byte{},
		refs: map[Hash][][]byte{}, chunks: map[uint64][]byte{}}
	for i, e := range bf.metaErrs {
		if e != nil {
			sv.damage = append(sv.damage, fmt.Sprintf("meta page %d: %v", i, e))
		}
	}
	var pages uint64
	if bf.pageSize == 0 {
		bf.pageSize = 4096 // no meta page: try the page size bbolt writes here
	}
	pages = uint64(bf.size) / uint64(bf.pageSize)
	for _, m := range bf.metas {
		w := &boltWalk{bf: bf, hwm: min(m.pgid, pages), seen: map[uint64]bool{}, visit: sv.fromTree}
		w.page(nil, m.root, nil, nil)
		for _, err := range w.damaged {
			sv.damage = append(sv.damage, err.Error())
		}
	}
	for id := uint64(2); id < pages; id++ {
		if elems, ok := bf.salvageLeaf(id, pages); ok {
			sv.guessAll(elems)
		}
	}
	return sv
}

// salvageLeaf reads page id as a leaf, whatever its header says: a
// damaged header is rebuilt from the first element, whose position gives
// the count of elements (they precede the keys and values).
func (bf *boltFile) salvageLeaf(id, pages uint64) ([]boltElem, bool) {
	ps := int64(bf.pageSize)
	b := make([]byte, ps)
	if _, err := bf.f.ReadAt(b, int64(id)*ps); err != nil {
		return nil, false
	}
	if ov := uint64(binary.LittleEndian.Uint32(b[12:])); ov > 0 && ov < pages-id {
		full := make([]byte, int64(ov+1)*ps)
		if _, err := bf.f.ReadAt(full, int64(id)*ps); err == nil {
			if flags, elems, err := parseBoltPage(full); err == nil {
				return elems, flags == boltLeafFlag
			}
		}
	}
	if flags, elems, err := parseBoltPage(b); err == nil {
		return elems, flags == boltLeafFlag
	}
	le := binary.LittleEndian
	if le.Uint32(b[boltPageHeader:]) > 1 { // a branch element starts with its position
		return nil, false
	}
	count := int64(le.Uint32(b[boltPageHeader+4:]) / boltElemSize)
	if count == 0 || count > 0xFFFF || boltPageHeader+count*boltElemSize > ps {
		return nil, false
	}
	var end int64 // of the last key or value: the overflow pages it takes
	for i := range count {
		e := b[boltPageHeader+i*boltElemSize:]
		end = max(end, boltPageHeader+i*boltElemSize+int64(le.Uint32(e[4:]))+int64(le.Uint32(e[8:]))+int64(le.Uint32(e[12:])))
	}
	if n := (end + ps - 1) / ps; n > 1 && uint64(n) <= pages-id {
		full := make([]byte, n*ps)
		if _, err := bf.f.ReadAt(full, int64(id)*ps); err != nil {
			return nil, false
		}
		b = full
	}
	le.PutUint16(b[8:], boltLeafFlag)
	le.PutUint16(b[10:], uint16(count))
	le.PutUint32(b[12:], uint32(int64(len(b))/ps-1))
	flags, elems, err := parseBoltPage(b)
	return elems, err == nil && flags == boltLeafFlag
}

// guessAll files the entries of a leaf page, and of the inline buckets
// (small ones, such as the commit records) in it.
func (sv *salvage) guessAll(elems []boltElem) {
	for _, e := range elems {
		switch {
		case e.flags&boltBucketFlag == 0:
			sv.guess(e.key, e.value)
		case len(e.value) > boltBucketHdr && binary.LittleEndian.Uint64(e.value) == 0:
			if flags, inner, err := parseBoltPage(e.value[boltBucketHdr:]); err == nil && flags == boltLeafFlag {
				sv.guessAll(inner)
			}
		}
	}
}

func (sv *salvage) fromTree(path [][]byte, key, value []byte) {
	switch {
	case len(path) == 1 && bytes.Equal(path[0], bucketManifests):
		if _, ok := sv.manifests[string(key)]; !ok {
			sv.manifests[string(key)] = bytes.Clone(value)
		}
	case len(path) == 1 && bytes.Equal(path[0], bucketCommits):
		if _, ok := sv.commits[string(key)]; !ok {
			sv.commits[string(key)] = bytes.Clone(value)
		}
	case len(path) == 1 && bytes.Equal(path[0], bucketRefs) && len(key) == len(Hash{}):
		sv.addRef(Hash(key), value)
	case len(path) == 1 && bytes.Equal(path[0], bucketChunks) && len(key) == 8:
		sv.addChunk(parseSeqKey(key), value)
	case len(path) == 2 && bytes.Equal(path[0], bucketChunks) && bytes.Equal(key, chunkValueKey) && len(path[1]) == 8:
		sv.addChunk(parseSeqKey(path[1]), value)
	}
}

func (sv *salvage) addRef(h Hash, v []byte) {
	for _, c := range sv.refs[h] {
		if bytes.Equal(c, v) {
			return
		}
	}
	sv.refs[h] = append(sv.refs[h], bytes.Clone(v))
}

func (sv *salvage) addChunk(seq uint64, v []byte) {
	if _, ok := sv.chunks[seq]; !ok {
		sv.chunks[seq] = bytes.Clone(v)
	}
}

// guess files an entry of a leaf page found outside the trees by its
// shape: manifests and commit records by their checksums, chunk
// locations by their encoding (checked against the segments later).
func (sv *salvage) guess(key, value []byte) {
	if k, e, ok := parseManifestKey(key); ok {
		if m, err := decodeManifest(value); err == nil && m.Key == k && m.Epoch == e {
			if _, ok := sv.manifests[string(key)]; !ok {
				sv.manifests[string(key)] = bytes.Clone(value)
			}
			return
		}
	}
	if job, e, ok := parseCommitKey(key); ok {
		if _, ok := decodeCommit(job, e, value); ok {
			if _, ok := sv.commits[string(key)]; !ok {
				sv.commits[string(key)] = bytes.Clone(value)
			}
			return
		}
	}
	if r, ok := decodeRef(value); ok && len(key) == len(Hash{}) && r.seg != 0 {
		sv.addRef(Hash(key), value)
	}
}

func parseCommitKey(b []byte) (string, uint64, bool) {
	if len(b) < 2 {
		return "", 0, false
	}
	n := int(binary.BigEndian.Uint16(b))
	if len(b) != 2+n+8 {
		return "", 0, false
	}
	return string(b[2 : 2+n]), binary.BigEndian.Uint64(b[2+n:]), true
}

// intactRefs keeps, for each chunk, the first location whose value decodes
// to the chunk's content hash.
func (sv *salvage) intactRefs(segDir string, dec *zstd.Decoder) map[Hash]ref {
	files := map[uint32]*os.File{}
	defer func() {
		for _, f := range files {
			f.Close()
		}
	}()
	open := func(id uint32) *os.File {
		f, ok := files[id]
		if !ok {
			f, _ = os.Open(filepath.Join(segDir, fmt.Sprintf("%06d", id)))
			files[id] = f
		}
		return f
	}
	out := make(map[Hash]ref, len(sv.refs))
	var buf []byte
	for h, cands := range sv.refs {
		for _, c := range cands {
			r, ok := decodeRef(c)
			if !ok {
				continue
			}
			var v []byte
			if r.seg == 0 {
				v = sv.chunks[r.seq]
			} else if f := open(r.seg); f != nil && r.size <= maxValueSize {
				buf = slices.Grow(buf[:0], int(r.size))[:r.size]
				if n, _ := f.ReadAt(buf, int64(r.off)); uint64(n) == r.size {
					v = buf
				}
			}
			if v != nil && valueIntact(v, h, dec) {
				out[h] = r
				break
			}
		}
	}
	return out
}

// valueIntact reports whether v decodes to a chunk whose hash is h.
func valueIntact(v []byte, h Hash, dec *zstd.Decoder) bool {
	hd, _, err := decodeChunkHeader(v, maxChunkSize)
	if err != nil {
		return false
	}
	return decodeChunk(v, make([]byte, hd.rawLen), h, dec, nil) == nil
}

// write fills a fresh index: the intact chunk locations, the manifests
// all of whose chunks are among them, the commit records all of whose
// worker checkpoints are kept, and each segment's length as it is on
// disk; then sweep recounts the references.
func (sv *salvage) write(tx *bolt.Tx, refs map[Hash]ref, segDir string, res *RepairResult) error {
	bs := map[string]*bolt.Bucket{}
	for _, name := range [][]byte{bucketChunks, bucketRefs, bucketManifests, bucketCommits, bucketSegments} {
		b, err := tx.CreateBucket(name)
		if err != nil {
			return err
		}
		bs[string(name)] = b
	}
	segs := map[uint32]bool{}
	for h, r := range refs {
		if r.seg != 0 {
			segs[r.seg] = true
		} else {
			cb, err := bs[string(bucketChunks)].CreateBucketIfNotExists(seqKey(r.seq))
			if err != nil {
				return err
			}
			if err := cb.Put(chunkValueKey, sv.chunks[r.seq]); err != nil {
				return err
			}
		}
		if err := bs[string(bucketRefs)].Put(h[:], encodeRef(r)); err != nil {
			return err
		}
	}
	for id := range segs {
		fi, err := os.Stat(filepath.Join(segDir, fmt.Sprintf("%06d", id)))
		if err != nil {
			return err
		}
		if err := bs[string(bucketSegments)].Put(segmentKey(id), binary.BigEndian.AppendUint64(nil, uint64(fi.Size()))); err != nil {
			return err
		}
	}
	kept := map[pin]bool{}
	for _, key := range slices.Sorted(maps.Keys(sv.manifests)) {
		v := sv.manifests[key]
		k, e, _ := parseManifestKey([]byte(key))
		m, err := decodeManifest(v)
		if err != nil {
			res.Dropped = append(res.Dropped, wrapDecode(k, e, err))
			continue
		}
		if missing := firstMissing(m, refs); missing != nil {
			res.Dropped = append(res.Dropped, epochErr(k, e, ErrCorrupt, "chunk %s is lost", short(missing[:])))
			continue
		}
		if err := bs[string(bucketManifests)].Put([]byte(key), v); err != nil {
			return err
		}
		kept[pin{k, e}] = true
		res.Kept = append(res.Kept, KeyEpoch{k, e})
	}
	for _, key := range slices.Sorted(maps.Keys(sv.commits)) {
		job, e, _ := parseCommitKey([]byte(key))
		c, ok := decodeCommit(job, e, sv.commits[key])
		if !ok {
			continue
		}
		whole := c.Workers > 0
		for w := range c.Workers {
			whole = whole && kept[pin{Key{Job: job, Worker: w}, e}]
		}
		if !whole {
			res.Dropped = append(res.Dropped, fmt.Errorf("%w: epoch %d of job %q lost a worker's checkpoint", ErrCorrupt, e, job))
			continue
		}
		if err := bs[string(bucketCommits)].Put([]byte(key), sv.commits[key]); err != nil {
			return err
		}
		res.Commits++
	}
	return sweep(tx, freeIn(tx, new([]chunkLoc)))
}

func firstMissing(m *Manifest, refs map[Hash]ref) *Hash {
	for _, hs := range [][]Hash{m.Chunks, m.FileChunks} {
		for _, h := range hs {
			if _, ok := refs[h]; !ok && !h.IsZero() {
				return &h
			}
		}
	}
	return nil
}
