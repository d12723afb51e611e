package ckpt

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"math/rand/v2"
	"path/filepath"
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
// durable capture left unreferenced.
func (s *Store) settle() {
	s.gcMu.Lock()
	s.gcMu.Unlock() //nolint:staticcheck // an empty critical section: a barrier
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

// mutateChunk rewrites the stored value of chunk h directly through bbolt.
func mutateChunk(t testing.TB, s *Store, h Hash, f func([]byte) []byte) {
	t.Helper()
	key := chunkKey(t, s, h)
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

// chunkBytes is the total size of the stored chunk values.
func chunkBytes(t testing.TB, s *Store) uint64 {
	t.Helper()
	var total uint64
	s.db.View(func(tx *bolt.Tx) error {
		chunks := tx.Bucket(bucketChunks)
		c := chunks.Cursor()
		for k, _ := c.First(); k != nil; k, _ = c.Next() {
			total += uint64(len(getChunk(chunks, k)))
		}
		return nil
	})
	return total
}

// chunkKey returns the key of chunk h's value in the chunks bucket.
func chunkKey(t testing.TB, s *Store, h Hash) []byte {
	t.Helper()
	var key []byte
	s.db.View(func(tx *bolt.Tx) error {
		if r, ok := decodeRef(tx.Bucket(bucketRefs).Get(h[:])); ok {
			key = seqKey(r.seq)
		}
		return nil
	})
	if key == nil {
		t.Fatalf("chunk %x is not indexed", h)
	}
	return key
}

func nil2rand() *rand.Rand { return rand.New(rand.NewPCG(3, 4)) }
