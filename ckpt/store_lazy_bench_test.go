package ckpt

import (
	"path/filepath"
	"testing"
)

// BenchmarkMemorySources finds the places of a 256 MiB checkpoint's
// chunks: what a lazy restore waits for before the guest starts.
func BenchmarkMemorySources(b *testing.B) {
	s, err := Open(Config{Path: filepath.Join(b.TempDir(), "ckpt.db"), NoSync: true, ScrubBytes: -1})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
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
	b.ResetTimer()
	for range b.N {
		if _, err := s.MemorySources(m); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(len(m.Chunks)), "ns/chunk")
}
