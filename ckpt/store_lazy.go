package ckpt

import (
	"bytes"
	"slices"

	"github.com/klauspost/compress/zstd"
	bolt "go.etcd.io/bbolt"
)

// A lazy restore (host/lazy) starts the guest before its memory is read
// and has a process of its own fill each chunk from the store, on the
// guest's first touch or in the background. That process cannot open the
// bbolt index (this process holds its lock), so it finds each chunk's
// place in a snapshot of the index pinned for it (PinIndex,
// index_places.go), or the store tells it where every chunk's value is
// up front (MemorySources); the filler reads the segment files and
// decodes each value with a ValueDecoder. The values stay where
// they are while the checkpoint's epoch is stored: a value is freed (or
// its place reused) only once no stored epoch references it, and the
// caller takes no checkpoint of the key, which could drop the epoch, until
// the fill is done.

// ChunkSource is where one non-zero chunk of a checkpoint's memory is
// stored.
type ChunkSource struct {
	Index uint32 // the chunk's index in the memory
	Hash  Hash
	// Seg is the segment file holding the value (SegmentPath), at Off,
	// Size bytes long; 0 if the value is in the index, then in Value.
	Seg       uint32
	Off, Size uint64
	Value     []byte
}

// MemorySources lists where each non-zero chunk of m's memory is stored,
// in chunk order. A chunk missing from the index refuses m as ReadMemory
// would. It reads the index only.
func (s *Store) MemorySources(m *Manifest) (srcs []ChunkSource, err error) {
	cs := int(m.ChunkSize)
	if cs == 0 || chunkCount(m.MemSize, cs) != uint64(len(m.Chunks)) {
		return nil, epochErr(m.Key, m.Epoch, ErrCorrupt, "manifest lists %d chunks for %d bytes: checkpoint is corrupt", len(m.Chunks), m.MemSize)
	}
	// The chunks in hash order, looked up in one walk of the refs bucket
	// (whose keys are the hashes): a lookup each costs 5-10 times as much
	// (16 ms for the 16384 chunks of 1 GiB), and this is what the guest
	// waits for before it starts.
	order := make([]uint32, 0, len(m.Chunks))
	for i, h := range m.Chunks {
		if !h.IsZero() {
			order = append(order, uint32(i))
		}
	}
	slices.SortFunc(order, func(a, b uint32) int { return bytes.Compare(m.Chunks[a][:], m.Chunks[b][:]) })
	at := make([]ChunkSource, len(m.Chunks))
	err = s.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketRefs).Cursor()
		var k, v []byte
		for n, i := range order {
			h := m.Chunks[i]
			if n == 0 {
				k, v = c.Seek(h[:])
			}
			// A few steps, then a seek: the bucket may hold many more
			// chunks (other epochs, other keys) than m.
			for step := 0; k != nil && bytes.Compare(k, h[:]) < 0; step++ {
				if step == 8 {
					k, v = c.Seek(h[:])
					continue
				}
				k, v = c.Next()
			}
			r, ok := ref{}, false
			if bytes.Equal(k, h[:]) {
				r, ok = decodeRef(v)
			}
			var val []byte
			if ok && r.seg == 0 {
				val = getChunk(tx.Bucket(bucketChunks), seqKey(r.seq))
				ok = val != nil
			}
			if !ok {
				return s.missingErr(m, h)
			}
			at[i] = ChunkSource{Index: i, Hash: h, Seg: r.seg, Off: r.off, Size: r.size, Value: cloneBytes(val)}
		}
		return nil
	})
	if err == nil {
		srcs = make([]ChunkSource, 0, len(order))
		for i, h := range m.Chunks {
			if !h.IsZero() {
				srcs = append(srcs, at[i])
			}
		}
	}
	if err != nil {
		return nil, err
	}
	return srcs, nil
}

// SegmentPath is the file of segment seg.
func (s *Store) SegmentPath(seg uint32) string { return s.segs.path(seg) }

// ChunkErr reads chunk i of m's memory as Verify and ReadMemory do and
// returns the error they give for it, or nil if it reads well: what a
// lazy restore that found the chunk damaged says.
func (s *Store) ChunkErr(m *Manifest, i int) error {
	if i < 0 || i >= len(m.Chunks) || m.Chunks[i].IsZero() {
		return nil
	}
	h := m.Chunks[i]
	one := *m
	one.Chunks, one.FileChunks = []Hash{h}, nil
	if err := s.Verify(&one); err != nil {
		return err
	}
	cs := uint64(m.ChunkSize)
	dst := make([]byte, min(cs, m.MemSize-uint64(i)*cs))
	return s.readChunks(m, []Hash{h}, dst)
}

// A ValueDecoder decodes stored chunk values outside a Store; one per
// goroutine.
type ValueDecoder struct {
	dec     *zstd.Decoder
	scratch []byte
}

// NewValueDecoder returns a decoder for values of chunks of at most
// chunkSize bytes.
func NewValueDecoder(chunkSize int) (*ValueDecoder, error) {
	dec, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(maxChunkSize), zstd.WithDecodeAllCapLimit(true))
	if err != nil {
		return nil, err
	}
	return &ValueDecoder{dec: dec, scratch: make([]byte, chunkSize+decodeSlack)}, nil
}

// Decode checks a stored value v (its checksum, length and codec),
// decompresses it into dst (the chunk's whole length) and checks the
// result's content hash against want.
func (d *ValueDecoder) Decode(v, dst []byte, want Hash) error {
	return decodeChunk(v, dst, want, d.dec, d.scratch)
}

// Close releases the decoder.
func (d *ValueDecoder) Close() { d.dec.Close() }
