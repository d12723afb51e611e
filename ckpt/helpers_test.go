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

var words = []string{"checkpoint", "message", "worker", "epoch", "the ", "and ", "sample", "halo", "stencil", "wordcount"}

// fillStructured writes a mix of small integers, pointers into a small
// range, short text and repeated words.
func fillStructured(c []byte, r *rand.Rand) {
	var prev uint64
	for i := 0; i+8 <= len(c); i += 8 {
		var w uint64
		switch r.IntN(6) {
		case 0:
			w = uint64(r.IntN(256))
		case 1:
			w = 0xc000000000 + uint64(r.IntN(1<<16))*8
		case 2:
			copy(c[i:i+8], words[r.IntN(len(words))])
			continue
		case 3:
			w = prev
		case 4:
			w = 0
		default:
			w = uint64(i)
		}
		binary.LittleEndian.PutUint64(c[i:], w)
		prev = w
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
	return p.Stats()
}

// storeDigest hashes every key and value of the file, to show that a read
// changed nothing.
func storeDigest(t testing.TB, s *Store) [32]byte {
	t.Helper()
	h := sha256.New()
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.ForEach(func(name []byte, b *bolt.Bucket) error {
			h.Write(name)
			return b.ForEach(func(k, v []byte) error {
				h.Write(k)
				h.Write(v)
				return nil
			})
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
		n = tx.Bucket(name).Stats().KeyN
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
