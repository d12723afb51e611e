package ckpt

import (
	"path/filepath"
	"testing"
)

// lazyBenchStore is a store holding one 256 MiB checkpoint, and its
// manifest.
func lazyBenchStore(b *testing.B) (*Store, *Manifest) {
	s, err := Open(Config{Path: filepath.Join(b.TempDir(), "ckpt.db"), NoSync: true, ScrubBytes: -1})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	k := Key{Job: "j"}
	p, err := s.Capture(Meta{Key: k, Epoch: 1}, genMemory(256<<20, 1))
	if err == nil {
		err = p.Wait()
	}
	if err != nil {
		b.Fatal(err)
	}
	m, err := s.Manifest(k, 1)
	if err != nil {
		b.Fatal(err)
	}
	return s, m
}

func reportPerChunk(b *testing.B, m *Manifest) {
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(len(m.Chunks)), "ns/chunk")
}

// BenchmarkMemorySources finds the places of a 256 MiB checkpoint's
// chunks up front: what a lazy restore of an index that cannot be pinned
// waits for before the guest starts.
func BenchmarkMemorySources(b *testing.B) {
	s, m := lazyBenchStore(b)
	b.ResetTimer()
	for range b.N {
		if _, err := s.MemorySources(m); err != nil {
			b.Fatal(err)
		}
	}
	reportPerChunk(b, m)
}

// BenchmarkPinIndex pins the index for a lazy restore of a 256 MiB
// checkpoint: what the guest waits for instead.
func BenchmarkPinIndex(b *testing.B) {
	s, m := lazyBenchStore(b)
	b.ResetTimer()
	for range b.N {
		pin, err := s.PinIndex(m)
		if err != nil || pin == nil {
			b.Fatal(err)
		}
		pin.Release()
	}
}

// BenchmarkPlaceReader finds each chunk's place of a 256 MiB checkpoint
// in a pinned index, in chunk order, as the filler's background reader
// does, from a fresh reader each time (no page read yet); leaves-read
// keeps no leaf page.
func BenchmarkPlaceReader(b *testing.B) {
	s, m := lazyBenchStore(b)
	pin, err := s.PinIndex(m)
	if err != nil || pin == nil {
		b.Fatal(err)
	}
	defer pin.Release()
	for _, bc := range []struct {
		name  string
		cache int
	}{{"leaves-kept", placeCacheBytes}, {"leaves-read", 0}} {
		b.Run(bc.name, func(b *testing.B) {
			defer func(c int) { placeCacheBytes = c }(placeCacheBytes)
			placeCacheBytes = bc.cache
			for range b.N {
				r, err := OpenPlaces(pin.Snapshot)
				if err != nil {
					b.Fatal(err)
				}
				for i, h := range m.Chunks {
					if h.IsZero() {
						continue
					}
					if _, err := r.Find(uint32(i), h); err != nil {
						b.Fatal(err)
					}
				}
				r.Close()
			}
			reportPerChunk(b, m)
		})
	}
}
