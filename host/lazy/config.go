package lazy

import "github.com/librahost/librahost/ckpt"

// Config is one lazy restore.
type Config struct {
	// Memory is the guest's memory to fill, from the start of its
	// mapping: page-aligned, a whole number of chunks long (the last may
	// be short of a chunk but not of a page). Its pages are dropped
	// first: nothing else may write it until the guest runs.
	Memory    []byte
	ChunkSize int
	// Chunks are the non-zero chunks, in order (ckpt.Store.MemorySources).
	Chunks      []ckpt.ChunkSource
	SegmentPath func(seg uint32) string
	// Filler, if set, is a filler spawned ahead (Spawn); Start takes it.
	Filler *Filler
}
