package ckpt

import (
	"testing"
)

// benchIndex is a closed store of 256 MiB of mixed memory in 64 KiB
// chunks; legacy moves its values into bbolt, as earlier versions kept
// them.
func benchIndex(b *testing.B, legacy bool) string {
	cfg := testConfig(b)
	cfg.ChunkSize = 64 << 10
	s, err := Open(cfg)
	if err != nil {
		b.Fatal(err)
	}
	capture(b, s, testMeta(Key{Job: "bench"}, 1), genMemory(256<<20, 1))
	if legacy {
		toBoltValues(b, s)
	}
	s.Close()
	return cfg.Path
}

// BenchmarkCheckIndex is what Open adds to check the index before bbolt
// maps it.
func BenchmarkCheckIndex(b *testing.B) {
	for _, legacy := range []bool{false, true} {
		name := "segments"
		if legacy {
			name = "valuesInBolt"
		}
		b.Run(name, func(b *testing.B) {
			path := benchIndex(b, legacy)
			for b.Loop() {
				if err := checkIndex(path); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
