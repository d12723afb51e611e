// Package ckpt is librahost's checkpoint store.
//
// A Store keeps the checkpoints of many guests (one Key per job and worker)
// in a single bbolt file. Guest linear memory is cut into fixed-size chunks
// that are addressed by their xxh3-128 content hash, compressed (with S2 by
// default, or zstd: Config.Codec) and written once: an incremental
// checkpoint writes only the chunks that changed since the previous
// durable one, and all-zero chunks are never stored. A manifest per (job,
// worker, epoch) lists the chunk hashes together with the globals, the
// asyncify data, the opaque host state and the file deltas, and binds the
// checkpoint to the module build that made it.
//
// Capture runs while the guest is paused: it hashes memory in parallel,
// copies the changed chunks and returns. Compression and the durable write
// continue in the background; Pending reports when the checkpoint is durable.
// The new chunks and the manifest of one capture are written in one bbolt
// transaction, so a crash at any moment leaves earlier epochs intact. The
// values of chunks that only dropped epochs used are deleted in a further
// transaction once the checkpoint is durable.
//
// Layout of the bbolt file:
//
//	manifests  len(job) u16 | job | worker u32 | epoch u64 (big-endian) → manifest (manifest_codec.go)
//	refs       chunk hash (xxh3-128) → manifests using it, stored size, sequence number
//	chunks     sequence number u64 → a bucket holding one value, the chunk
//	           header + payload (chunk_codec.go, store_chunks.go)
//
// Chunk values are keyed by an increasing sequence number rather than by
// their hash so that new chunks append to the B+tree instead of splitting
// leaves full of old ones (store_gc.go has the figures), and each sits in a
// bucket of its own so that dropping a chunk does not rewrite the values
// next to it (store_chunks.go). A capture's chunks
// may be written in several early transactions while the rest is still
// being compressed; they count only once the final transaction has written
// their reference counts and the manifest, and chunks left unreferenced by
// a crash are swept at Open.
//
// Every chunk and manifest carries a checksum. Reads verify them and refuse
// a corrupt, truncated, foreign or newer-format checkpoint with one clear
// line that wraps one of the package's sentinel errors; Latest falls back to
// the newest epoch that is fully valid.
package ckpt
