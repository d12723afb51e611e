package ckpt

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// genMemory fills a guest-like memory image: a quarter of it zero (in runs
// of whole regions, like an untouched heap), the rest half structured data
// that compresses the way a Go heap does, half random bytes. Regions are
// 64 KiB.
func genMemory(size int, seed uint64) []byte {
	mem := make([]byte, size)
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	const region = 64 << 10
	for off := 0; off < size; off += region {
		c := mem[off:min(off+region, size)]
		switch x := r.IntN(8); {
		case x < 2: // zero
		case x < 5:
			fillStructured(c, r)
		default:
			fillRandom(c, r)
		}
	}
	return mem
}

func fillRandom(c []byte, r *rand.Rand) {
	for i := 0; i+8 <= len(c); i += 8 {
		binary.LittleEndian.PutUint64(c[i:], r.Uint64())
	}
}

var words = []string{"checkpoint ", "message ", "worker ", "epoch ", "the ", "and ", "sample ", "halo ", "stencil ", "wordcount "}

// templates are object layouts that fillStructured repeats with small
// variations, the way a heap holds many objects of a few types.
var templates = func() [][]byte {
	r := rand.New(rand.NewPCG(7, 7))
	out := make([][]byte, 64)
	for i := range out {
		t := make([]byte, 16+8*r.IntN(30))
		for j := 0; j < len(t); j += 8 {
			var w uint64
			switch r.IntN(4) {
			case 0:
				w = 0xc000000000 + uint64(r.IntN(1<<20))*8 // pointer
			case 1:
				w = uint64(r.IntN(1000)) // small integer
			case 2: // zero
			default:
				w = r.Uint64() // hash, float
			}
			binary.LittleEndian.PutUint64(t[j:], w)
		}
		out[i] = t
	}
	return out
}()

// fillStructured writes heap-like data: objects copied from a few
// templates with a word or two changed, zero gaps and short text.
func fillStructured(c []byte, r *rand.Rand) {
	for i := 0; i < len(c); {
		var n int
		switch x := r.IntN(16); {
		case x < 12:
			t := templates[r.IntN(len(templates))]
			n = copy(c[i:], t)
			for range 1 + r.IntN(4) {
				if j := 8 * r.IntN(len(t)/8); i+j+8 <= len(c) {
					w := 0xc000000000 + uint64(r.IntN(1<<20))*8
					if r.IntN(3) == 0 {
						w = r.Uint64()
					}
					binary.LittleEndian.PutUint64(c[i+j:], w)
				}
			}
		case x < 14:
			n = min(16+r.IntN(496), len(c)-i)
			clear(c[i : i+n])
		default:
			for k := 0; k < 4+r.IntN(12) && i+n < len(c); k++ {
				n += copy(c[i+n:], words[r.IntN(len(words))])
			}
		}
		i += n
	}
}

func testConfig(t testing.TB) Config {
	return Config{Path: filepath.Join(t.TempDir(), "sub", "ckpt.db"), ChunkSize: 4 << 10, NoSync: true}
}

func openTest(t testing.TB, cfg Config) *Store {
	t.Helper()
	s, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

var testBinding = Binding{ModuleDigest: sha256.Sum256([]byte("module")), Wazero: "v1.12.0", Go: "go1.26.8"}

func testMeta(k Key, epoch uint64) Meta {
	return Meta{Key: k, Epoch: epoch, Binding: testBinding,
		Globals: []uint64{1, 2, epoch}, Host: []byte("host state"),
		Created: time.Unix(1700000000, int64(epoch))}
}

func capture(t testing.TB, s *Store, meta Meta, mem []byte) Stats {
	t.Helper()
	p, err := s.Capture(meta, mem)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Wait(); err != nil {
		t.Fatal(err)
	}
	s.settle()
	return p.Stats()
}

// settle waits until the writer has freed the chunk values the last
// durable capture left unreferenced, and the puncher has punched them out.
func (s *Store) settle() {
	s.gcMu.Lock()
	s.gcMu.Unlock() //nolint:staticcheck // an empty critical section: a barrier
	s.segs.freeing.Wait()
}

// storeDigest hashes every key and value of the file, to show that a read
// changed nothing.
func storeDigest(t testing.TB, s *Store) [32]byte {
	t.Helper()
	h := sha256.New()
	var walk func(b *bolt.Bucket) error
	walk = func(b *bolt.Bucket) error {
		return b.ForEach(func(k, v []byte) error {
			h.Write(k)
			if v == nil { // a nested bucket
				h.Write([]byte("{"))
				defer h.Write([]byte("}"))
				return walk(b.Bucket(k))
			}
			h.Write(v)
			return nil
		})
	}
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.ForEach(func(name []byte, b *bolt.Bucket) error {
			h.Write(name)
			return walk(b)
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	entries, _ := os.ReadDir(s.segs.dir)
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(s.segs.dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		h.Write([]byte(e.Name()))
		h.Write(b)
	}
	var out [32]byte
	h.Sum(out[:0])
	return out
}

func bucketLen(t testing.TB, s *Store, name []byte) int {
	t.Helper()
	n := 0
	s.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(name).Cursor()
		for k, _ := c.First(); k != nil; k, _ = c.Next() {
			n++
		}
		return nil
	})
	return n
}

// mutateValue rewrites one stored value directly through bbolt.
func mutateValue(t testing.TB, s *Store, bucket, key []byte, f func([]byte) []byte) {
	t.Helper()
	err := s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucket)
		v := b.Get(key)
		if v == nil {
			t.Fatalf("no value for %x", key)
		}
		return b.Put(key, f(bytes.Clone(v)))
	})
	if err != nil {
		t.Fatal(err)
	}
}

func readBack(t testing.TB, s *Store, m *Manifest) []byte {
	t.Helper()
	dst := make([]byte, m.MemSize)
	if err := s.ReadMemory(m, dst); err != nil {
		t.Fatal(err)
	}
	return dst
}

// mutateChunk rewrites the stored value of chunk h behind the store's
// back: in its segment, or in the chunks bucket. A segment value can only
// be cut short if it is the last of its file, which is then cut there.
func mutateChunk(t testing.TB, s *Store, h Hash, f func([]byte) []byte) {
	t.Helper()
	r := chunkRef(t, s, h)
	if r.seg != 0 {
		file := s.segs.files[r.seg]
		v := make([]byte, r.size)
		if _, err := file.ReadAt(v, int64(r.off)); err != nil {
			t.Fatal(err)
		}
		nv := f(v)
		if _, err := file.WriteAt(nv, int64(r.off)); err != nil {
			t.Fatal(err)
		}
		if uint64(len(nv)) < r.size {
			cutSegment(t, s, r, int64(r.off)+int64(len(nv)))
		}
		return
	}
	key := seqKey(r.seq)
	err := s.db.Update(func(tx *bolt.Tx) error {
		chunks := tx.Bucket(bucketChunks)
		v := getChunk(chunks, key)
		if v == nil {
			t.Fatalf("no value for chunk %x", h)
		}
		nv := f(bytes.Clone(v))
		if b := chunks.Bucket(key); b != nil {
			return b.Put(chunkValueKey, nv)
		}
		return chunks.Put(key, nv)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// cutSegment truncates the segment of r, whose value must be its last, at
// n.
func cutSegment(t testing.TB, s *Store, r ref, n int64) {
	t.Helper()
	file := s.segs.files[r.seg]
	if fi, err := file.Stat(); err != nil || fi.Size() != int64(r.off+r.size) {
		t.Fatalf("chunk value at %d+%d is not the last of its segment", r.off, r.size)
	}
	if err := file.Truncate(n); err != nil {
		t.Fatal(err)
	}
}

// dropValue removes the stored value of chunk h behind the store's back.
func dropValue(t testing.TB, s *Store, h Hash) {
	t.Helper()
	r := chunkRef(t, s, h)
	if r.seg != 0 {
		cutSegment(t, s, r, int64(r.off))
		return
	}
	if err := s.db.Update(func(tx *bolt.Tx) error { return deleteChunk(tx.Bucket(bucketChunks), seqKey(r.seq)) }); err != nil {
		t.Fatal(err)
	}
}

// valueOf returns a copy of chunk h's stored value, or nil.
func valueOf(t testing.TB, s *Store, h Hash) []byte {
	t.Helper()
	var out []byte
	s.db.View(func(tx *bolt.Tx) error {
		sv, ok := storedValueIn(tx, h)
		if !ok {
			return nil
		}
		var buf *[]byte
		v, err := s.load(sv, &buf)
		if err == nil {
			out = bytes.Clone(v)
		}
		return nil
	})
	return out
}

// eachRef calls f with every index entry.
func eachRef(t testing.TB, s *Store, f func(ref)) {
	t.Helper()
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketRefs).ForEach(func(_, v []byte) error {
			r, _ := decodeRef(v)
			f(r)
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
}

// chunkBytes is the total size of the chunk values the store references.
func chunkBytes(t testing.TB, s *Store) uint64 {
	var total uint64
	eachRef(t, s, func(r ref) { total += r.size })
	return total
}

// valueCount counts the stored chunk values: those in the chunks bucket and
// those in segments that a reference names.
func valueCount(t testing.TB, s *Store) int {
	n := bucketLen(t, s, bucketChunks)
	eachRef(t, s, func(r ref) {
		if r.seg != 0 {
			n++
		}
	})
	return n
}

// deadBytes is how much of the segments no reference covers and the store
// has lost track of: in the current segment, gaps not on the spare list;
// in older ones, gaps that still hold data (punched ranges read as zeros).
func deadBytes(t testing.TB, s *Store) int64 {
	t.Helper()
	var total int64
	s.db.View(func(tx *bolt.Tx) error {
		live, err := segmentExtents(tx)
		if err != nil {
			t.Fatal(err)
		}
		s.segs.mu.Lock()
		defer s.segs.mu.Unlock()
		for id, f := range s.segs.files {
			b, err := os.ReadFile(f.Name())
			if err != nil {
				t.Fatal(err)
			}
			var spare, inGaps int64 // spare bytes, and those of them in gaps
			if id == s.segs.cur {
				for _, x := range s.segs.spare {
					spare += x.end - x.off
				}
			}
			for _, g := range gaps(live[id], int64(len(b))) {
				switch {
				case id == s.segs.cur:
					uncovered := g.end - g.off
					for _, x := range s.segs.spare {
						o := max(0, min(g.end, x.end)-max(g.off, x.off))
						uncovered -= o
						inGaps += o
					}
					total += uncovered
				case slices.ContainsFunc(b[g.off:g.end], func(c byte) bool { return c != 0 }):
					total += g.end - g.off
				}
			}
			if spare != inGaps {
				t.Fatalf("segment %d: %d spare bytes overlap referenced values", id, spare-inGaps)
			}
		}
		return nil
	})
	return total
}

// chunkRef returns chunk h's index entry.
func chunkRef(t testing.TB, s *Store, h Hash) ref {
	t.Helper()
	var r ref
	var ok bool
	s.db.View(func(tx *bolt.Tx) error {
		r, ok = decodeRef(tx.Bucket(bucketRefs).Get(h[:]))
		return nil
	})
	if !ok {
		t.Fatalf("chunk %x is not indexed", h)
	}
	return r
}

// toBoltValues moves every chunk value out of the segments into the chunks
// bucket, to make the store look as if an earlier version had written it.
func toBoltValues(t testing.TB, s *Store) int {
	t.Helper()
	s.settle()
	var moved []chunkLoc
	err := s.db.Update(func(tx *bolt.Tx) error {
		moved = moved[:0]
		refs, chunks := tx.Bucket(bucketRefs), tx.Bucket(bucketChunks)
		type move struct {
			k []byte
			r ref
		}
		var moves []move
		if err := refs.ForEach(func(k, v []byte) error {
			if r, ok := decodeRef(v); ok && r.seg != 0 {
				moves = append(moves, move{bytes.Clone(k), r})
			}
			return nil
		}); err != nil {
			return err
		}
		for _, m := range moves {
			v := make([]byte, m.r.size)
			if _, err := s.segs.files[m.r.seg].ReadAt(v, int64(m.r.off)); err != nil {
				return err
			}
			seq, err := chunks.NextSequence()
			if err != nil {
				return err
			}
			if err := putChunk(chunks, seq, v); err != nil {
				return err
			}
			moved = append(moved, m.r.chunkLoc)
			m.r.chunkLoc = chunkLoc{seq: seq, size: m.r.size}
			if err := refs.Put(m.k, encodeRef(m.r)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	s.segs.freeLater(moved)
	return len(moved)
}

func nil2rand() *rand.Rand { return rand.New(rand.NewPCG(3, 4)) }

// putChunk stores a value in the chunks bucket as earlier versions did
// (store_chunks.go), for tests of stores they wrote.
func putChunk(chunks *bolt.Bucket, seq uint64, value []byte) error {
	b, err := chunks.CreateBucket(seqKey(seq))
	if err != nil {
		return err
	}
	return b.Put(chunkValueKey, value)
}
