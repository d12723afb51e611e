package ckpt

import (
	"bytes"
	"encoding/binary"
	"testing"

	"github.com/zeebo/xxh3"
	bolt "go.etcd.io/bbolt"
)

// chunkCodecs counts the stored chunk values by codec.
func chunkCodecs(t *testing.T, s *Store) map[byte]int {
	t.Helper()
	out := map[byte]int{}
	var hs []Hash
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketRefs).ForEach(func(k, _ []byte) error {
			hs = append(hs, Hash(k))
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range hs {
		out[valueOf(t, s, h)[0]]++
	}
	return out
}

// TestFormat1StoreStillRead: a store written by format 1 (zstd chunks in
// the chunks bucket, format 1 manifests) is read, and captures on top of
// it use its chunks.
func TestFormat1StoreStillRead(t *testing.T) {
	cfg := testConfig(t)
	k := Key{Job: "old", Worker: 1}
	cfg.Codec = CodecZstd
	old := openTest(t, cfg)
	mem1, mem2 := twoEpochs(t, old, k)
	toBoltValues(t, old)
	for _, e := range []uint64{1, 2} {
		mutateValue(t, old, bucketManifests, manifestKey(k, e), func(v []byte) []byte {
			binary.LittleEndian.PutUint32(v[4:], 1)
			binary.LittleEndian.PutUint64(v[len(v)-8:], xxh3.Hash(v[:len(v)-8]))
			return v
		})
	}
	if c := chunkCodecs(t, old); c[codecZstd] == 0 || c[codecS2] != 0 {
		t.Fatalf("codecs of the old store: %v", c)
	}
	if err := old.Close(); err != nil {
		t.Fatal(err)
	}

	cfg.Codec = CodecDefault
	s := openTest(t, cfg)
	mem3 := bytes.Clone(mem2)
	fillStructured(mem3[:cs(s)], nil2rand())
	st := capture(t, s, testMeta(k, 3), mem3)
	if st.Changed != 1 {
		t.Fatalf("epoch 3 changed %d chunks, want 1", st.Changed)
	}
	if c := chunkCodecs(t, s); c[codecZstd] == 0 || c[codecS2] != 1 {
		t.Fatalf("codecs after a new capture: %v", c)
	}
	for e, want := range map[uint64][]byte{1: mem1, 2: mem2, 3: mem3} {
		m, err := s.Manifest(k, e)
		if err != nil {
			t.Fatal(err)
		}
		if wantFormat := map[bool]uint32{true: 1, false: FormatVersion}[e < 3]; m.Format != wantFormat {
			t.Errorf("epoch %d has format %d, want %d", e, m.Format, wantFormat)
		}
		if got := readBack(t, s, m); !bytes.Equal(got, want) {
			t.Fatalf("epoch %d reads back wrong", e)
		}
		if err := s.Verify(m); err != nil {
			t.Fatal(err)
		}
	}
}

func TestConfigCodec(t *testing.T) {
	for _, tt := range []struct {
		codec Codec
		want  byte
	}{{CodecDefault, codecS2}, {CodecS2, codecS2}, {CodecZstd, codecZstd}} {
		cfg := testConfig(t)
		cfg.Codec = tt.codec
		s := openTest(t, cfg)
		mem := make([]byte, 4*cs(s))
		fillStructured(mem, nil2rand())
		capture(t, s, testMeta(Key{Job: "c"}, 1), mem)
		if c := chunkCodecs(t, s); c[tt.want] != 4 {
			t.Errorf("Codec %v: stored %v, want 4 of codec %d", tt.codec, c, tt.want)
		}
	}
	cfg := testConfig(t)
	cfg.Codec = 7
	if _, err := Open(cfg); err == nil || err.Error() != "ckpt: Config.Codec Codec(7) is unknown" {
		t.Fatalf("Open with Codec 7: %v", err)
	}
}
