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
	// Chunks are the non-zero chunks, in order (ckpt.Store.MemorySources),
	// their places found up front; or, if Index is set, the filler finds
	// the place of each chunk of Hashes (the manifest's, by chunk, zero
	// for a zero chunk) in that snapshot of the index when it fills the
	// chunk (ckpt.PlaceReader), and the guest need not wait for a lookup
	// of them all.
	Chunks      []ckpt.ChunkSource
	SegmentPath func(seg uint32) string
	Index       *ckpt.IndexSnapshot
	Hashes      []ckpt.Hash
	// Filler, if set, is a filler spawned ahead (Spawn); Start takes it.
	Filler *Filler
}
