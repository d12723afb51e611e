package ckpt

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"testing"
)

// replicate copies k's epoch from src to dst as a host would over the
// network, and returns how many chunk values travelled.
func replicate(t *testing.T, src, dst *Store, k Key, epoch uint64) int {
	t.Helper()
	r, err := src.ReplicaOf(k, epoch)
	if err != nil {
		t.Fatal(err)
	}
	need, err := dst.Missing(r.Chunks)
	if err != nil {
		t.Fatal(err)
	}
	values := map[Hash][]byte{}
	if err := src.ReadValues(need, func(h Hash, v []byte) error {
		values[h] = bytes.Clone(v)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := dst.AddReplica(r.Manifest, values); err != nil {
		t.Fatal(err)
	}
	return len(values)
}

// TestReplica: a replica of a full checkpoint takes every chunk, one of an
// incremental checkpoint only the changed ones, and both read back the
// memory exactly on the replica's store.
func TestReplica(t *testing.T) {
	src, dst := openTest(t, testConfig(t)), openTest(t, testConfig(t))
	k := Key{Job: "job", Worker: 3}
	rng := rand.New(rand.NewPCG(1, 2))
	mem := make([]byte, 256<<10)
	fillRandom(mem, rng)
	clear(mem[64<<10 : 96<<10]) // zero chunks are never sent
	capture(t, src, testMeta(k, 1), mem)
	if n := replicate(t, src, dst, k, 1); n != 56 {
		t.Fatalf("a full checkpoint of 64 chunks, 8 zero: %d values sent, want 56", n)
	}
	mem1 := bytes.Clone(mem)
	fillRandom(mem[8<<10:12<<10], rng)
	fillRandom(mem[200<<10:204<<10], rng)
	capture(t, src, testMeta(k, 2), mem)
	if n := replicate(t, src, dst, k, 2); n != 2 {
		t.Fatalf("an incremental checkpoint with 2 chunks changed: %d values sent", n)
	}
	for e, want := range map[uint64][]byte{1: mem1, 2: mem} {
		m, err := dst.Manifest(k, e)
		if err != nil {
			t.Fatal(err)
		}
		got := make([]byte, len(want))
		if err := dst.ReadMemory(m, got); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) || string(m.Host) != "host state" {
			t.Fatalf("epoch %d reads back differently on the replica", e)
		}
	}
	if n := replicate(t, src, dst, k, 2); n != 0 {
		t.Fatalf("a replica made again sent %d values", n)
	}
}

// TestReplicaRefused: a damaged value, or a chunk neither given nor held,
// writes nothing.
func TestReplicaRefused(t *testing.T) {
	src, dst := openTest(t, testConfig(t)), openTest(t, testConfig(t))
	k := Key{Job: "job"}
	mem := make([]byte, 64<<10)
	fillRandom(mem, rand.New(rand.NewPCG(3, 4)))
	capture(t, src, testMeta(k, 1), mem)
	r, err := src.ReplicaOf(k, 1)
	if err != nil {
		t.Fatal(err)
	}
	values := map[Hash][]byte{}
	src.ReadValues(r.Chunks, func(h Hash, v []byte) error { values[h] = bytes.Clone(v); return nil })
	before := storeDigest(t, dst)

	bad := map[Hash][]byte{}
	for h, v := range values {
		bad[h] = v
	}
	v := bytes.Clone(bad[r.Chunks[5]])
	v[len(v)-1] ^= 1
	bad[r.Chunks[5]] = v
	if err := dst.AddReplica(r.Manifest, bad); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("a damaged value: %v", err)
	}
	delete(values, r.Chunks[7])
	if err := dst.AddReplica(r.Manifest, values); !errors.Is(err, ErrNotFound) {
		t.Fatalf("a chunk neither given nor held: %v", err)
	}
	if storeDigest(t, dst) != before {
		t.Fatal("a refused replica changed the store")
	}
	if _, err := dst.Manifest(k, 1); !errors.Is(err, ErrNotFound) {
		t.Fatalf("a refused replica is listed: %v", err)
	}
}
