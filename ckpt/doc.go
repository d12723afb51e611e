// Package ckpt is librahost's checkpoint store.
//
// A Store keeps the checkpoints of many guests (one Key per job and worker)
// in a single bbolt file. Guest linear memory is cut into fixed-size chunks
// that are addressed by their xxh3-128 content hash, compressed with zstd
// and written once: an incremental checkpoint writes only the chunks that
// changed since the previous durable one, and all-zero chunks are never
// stored. A manifest per (job, worker, epoch) lists the chunk hashes together
// with the globals, the asyncify data, the opaque host state and the file
// deltas, and binds the checkpoint to the module build that made it.
//
// Capture runs while the guest is paused: it hashes memory in parallel,
// copies the changed chunks and returns. Compression and the durable write
// continue in the background; Pending reports when the checkpoint is durable.
// The new chunks and the manifest of one capture are written in one bbolt
// transaction, so a crash at any moment leaves earlier epochs intact.
//
// Every chunk and manifest carries a checksum. Reads verify them and refuse
// a corrupt, truncated, foreign or newer-format checkpoint with one clear
// line that wraps one of the package's sentinel errors; Latest falls back to
// the newest epoch that is fully valid.
package ckpt
