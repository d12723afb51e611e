package ckpt

import (
	"bytes"
	"encoding/binary"
	"errors"
	"strings"
	"testing"

	"github.com/zeebo/xxh3"
)

// twoEpochs stores epochs 1 and 2 of k; epoch 2 changes chunk 1 only.
func twoEpochs(t *testing.T, s *Store, k Key) (mem1, mem2 []byte) {
	t.Helper()
	mem1 = genMemory(256<<10, 11)
	copy(mem1[cs(s):2*cs(s)], bytes.Repeat([]byte("x"), cs(s)))
	capture(t, s, testMeta(k, 1), mem1)
	mem2 = bytes.Clone(mem1)
	mem2[cs(s)+10] = 'y'
	capture(t, s, testMeta(k, 2), mem2)
	return mem1, mem2
}

func TestRefusals(t *testing.T) {
	k := Key{Job: "refuse", Worker: 2}
	resum := func(v []byte) []byte {
		binary.LittleEndian.PutUint64(v[len(v)-8:], xxh3.Hash(v[:len(v)-8]))
		return v
	}
	tests := []struct {
		name    string
		damage  func(t *testing.T, s *Store)
		want    Binding
		kind    error
		message string
	}{
		{"corrupt chunk", func(t *testing.T, s *Store) {
			m, _ := s.Manifest(k, 2)
			h := m.Chunks[1]
			mutateChunk(t, s, h, func(v []byte) []byte { v[len(v)-1] ^= 1; return v })
		}, testBinding, ErrCorrupt, "checksum mismatch: checkpoint is corrupt"},
		{"missing chunk", func(t *testing.T, s *Store) {
			m, _ := s.Manifest(k, 2)
			h := m.Chunks[1]
			dropValue(t, s, h)
		}, testBinding, ErrCorrupt, "is missing: checkpoint is corrupt"},
		{"truncated chunk", func(t *testing.T, s *Store) {
			m, _ := s.Manifest(k, 2)
			h := m.Chunks[1]
			mutateChunk(t, s, h, func(v []byte) []byte { return v[:5] })
		}, testBinding, ErrTruncated, "truncated"},
		{"truncated manifest", func(t *testing.T, s *Store) {
			mutateValue(t, s, bucketManifests, manifestKey(k, 2), func(v []byte) []byte { return v[:len(v)/2] })
		}, testBinding, ErrTruncated, "manifest truncated"},
		{"manifest bit flip", func(t *testing.T, s *Store) {
			mutateValue(t, s, bucketManifests, manifestKey(k, 2), func(v []byte) []byte { v[40] ^= 4; return v })
		}, testBinding, ErrCorrupt, "manifest checksum mismatch: checkpoint is corrupt"},
		{"format version", func(t *testing.T, s *Store) {
			mutateValue(t, s, bucketManifests, manifestKey(k, 2), func(v []byte) []byte {
				binary.LittleEndian.PutUint32(v[4:], 9)
				return resum(v)
			})
		}, testBinding, ErrFormat, "format version 9, this librahost reads 1 to 3"},
		{"module digest", nil, Binding{ModuleDigest: [32]byte{0x34, 0xcd}}, ErrForeignModule, "made by another build of the module (digest"},
		{"wazero version", nil, Binding{Wazero: "v9"}, ErrForeignModule, "made with wazero v1.12.0, this host runs v9"},
		{"go version", nil, Binding{Go: "go9"}, ErrForeignModule, "made with Go go1.26.8, this host runs go9"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := openTest(t, testConfig(t))
			mem1, mem2 := twoEpochs(t, s, k)
			if tt.damage != nil {
				tt.damage(t, s)
			}
			before := storeDigest(t, s)

			m, refused, err := s.Latest(k, tt.want)
			var newest error
			if tt.want == testBinding {
				if err != nil || m.Epoch != 1 || len(refused) != 1 {
					t.Fatalf("Latest = %v, %v, %v; want epoch 1 and one refusal", m, refused, err)
				}
				if !bytes.Equal(readBack(t, s, m), mem1) {
					t.Fatal("fallback epoch reads back wrong")
				}
				newest = refused[0]
			} else {
				// Both epochs are foreign.
				if !errors.Is(err, ErrNotFound) || len(refused) != 2 {
					t.Fatalf("Latest = %v, %v, %v; want none and two refusals", m, refused, err)
				}
				newest = refused[0]
			}
			if !errors.Is(newest, tt.kind) {
				t.Fatalf("refusal %q is not %v", newest, tt.kind)
			}
			msg := newest.Error()
			if !strings.HasPrefix(msg, `ckpt: epoch 2 of job "refuse" worker 2: `) || !strings.Contains(msg, tt.message) || strings.Contains(msg, "\n") {
				t.Fatalf("refusal message %q", msg)
			}
			if tt.damage != nil {
				if m2, err := s.Manifest(k, 2); err == nil {
					if err := s.ReadMemory(m2, make([]byte, m2.MemSize)); !errors.Is(err, tt.kind) {
						t.Fatalf("ReadMemory of the damaged epoch: %v", err)
					}
				} else if !errors.Is(err, tt.kind) {
					t.Fatalf("Manifest of the damaged epoch: %v", err)
				}
			}
			if after := storeDigest(t, s); after != before {
				t.Fatal("a refusal modified the store")
			}

			// A later capture of the same memory is readable again.
			capture(t, s, testMeta(k, 3), mem2)
			m, _, err = s.Latest(k, testBinding)
			if err != nil || m.Epoch != 3 || !bytes.Equal(readBack(t, s, m), mem2) {
				t.Fatalf("capture after refusal: %v, %v", m, err)
			}
		})
	}
}

func TestManifestNotFound(t *testing.T) {
	s := openTest(t, testConfig(t))
	k := Key{Job: "none"}
	if _, err := s.Manifest(k, 1); !errors.Is(err, ErrNotFound) {
		t.Fatal(err)
	}
	if _, _, err := s.Latest(k, Binding{}); !errors.Is(err, ErrNotFound) {
		t.Fatal(err)
	}
	if err := s.Delete(k); !errors.Is(err, ErrNotFound) {
		t.Fatal(err)
	}
}
