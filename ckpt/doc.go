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
// copies the changed chunks and returns. With a Meta.Dirty hint (the pages
// the guest wrote since its last capture, from host/dirty) it hashes only
// the chunks those pages touch and takes the other hashes from that
// capture. With Meta.Dirty.Frozen (a copy-on-write snapshot that
// host/dirty keeps while the guest runs on) Capture only says which chunks
// it needs and returns; it reads them in the order the snapshot gives (the
// blocks the guest waits for first), and hashes and compresses each as it
// reads it, so that the snapshot gives each block back at once. The
// key's next capture may be taken while that goes on: it needs what its
// hint says was written, and takes the other hashes from the capture
// before once they are known; a capture that fails to be written makes
// the next one of its key need everything.
// Compression and the durable write
// continue in the background; Pending reports when the checkpoint is durable.
// The values of new chunks are appended to a segment file beside the bbolt
// file and synced; then their index entries and the manifest are written
// in one bbolt transaction, so a crash at any moment leaves earlier epochs
// intact. The values of chunks that only dropped epochs used are freed
// once the checkpoint is durable.
//
// Layout of the bbolt file:
//
//	manifests  len(job) u16 | job | worker u32 | epoch u64 (big-endian) → manifest (manifest_codec.go)
//	refs       chunk hash (xxh3-128) → manifests using it, stored size, and where
//	           the value is: segment u32 | offset u64, or a sequence number u64
//	segments   segment u32 → committed length u64
//	chunks     sequence number u64 → a bucket holding one value (earlier versions)
//	commits    len(job) u16 | job | epoch u64 → job epoch commit record (store_job.go)
//
// and of the segment directory, Path+".seg":
//
//	000001, 000002, ...  chunk values, each the chunk header + payload
//	                     (chunk_codec.go), back to back
//
// Chunk values are kept out of bbolt so that a capture writes them with a
// few large writes straight from the compressors' buffers, instead of
// bbolt copying each into pages of its own (segment.go). A value counts
// only once the transaction that records it, and its segment's new
// length, is committed: Open truncates each segment to its committed
// length. The room of a value no longer referenced is reused by later
// values (segment_spare.go); Open finds what a crash left unreferenced,
// and a segment with no referenced value is deleted. Stores written by
// earlier versions kept values in the chunks bucket (store_chunks.go);
// those are still read, and deleted with the epochs that use them.
//
// A checkpoint is replicated to another host's store with ReplicaOf,
// Missing, ReadValues and BeginReplica (store_replica.go,
// store_replica_recv.go): only the chunk values the other store lacks
// travel, as stored; the receiving store checks each against its hash and
// writes it to a segment of its own (segment_replica.go) while more
// arrive, and commits the replica whole or not at all.
//
// The package also holds the cores of the coordinated checkpoint
// protocol: EpochCoordinator and Participant, the non-blocking protocol
// of a job on one host or over several (proto.go: markers, DONE and
// COMMIT per host per epoch, replicas, rollback to the newest committed
// epoch as a new incarnation when a host dies), and live migration of a rank
// to another host and draining a host (proto_migrate.go: pre-copy rounds at
// the source, a switch that never overlaps a checkpoint round, the route
// change every host applies, and the rules against rounds and rollbacks).
// They are plain state machines, driven through golden scripts in
// testdata/proto and testdata/migrate (go test -run 'TestProto.*Scripts'
// -rewrite rewrites them).
//
// Every chunk and manifest carries a checksum. Reads verify them and refuse
// a corrupt, truncated, foreign or newer-format checkpoint with one clear
// line that wraps one of the package's sentinel errors; Latest falls back to
// the newest epoch that is fully valid. Scrub reads and decodes every
// chunk and says which epochs are usable (store_verify.go). After each
// durable capture the writer checks the next Config.ScrubBytes of stored
// values and marks a damaged one, which the next capture holding that
// chunk writes again (store_scrub.go).
//
// bbolt trusts the pages it reads, so Open first walks the tree bbolt will
// use with plain reads (index_check.go) and refuses a damaged or cut-short
// index with ErrIndexDamaged instead of letting bbolt panic or fault.
// Repair (index_repair.go) then salvages what is readable into a fresh
// index: manifests and commit records by their checksums, chunk locations
// whose segment values decode to their hash, from either meta page's tree
// and from every leaf page of the file; epochs with a lost chunk are
// dropped, and the damaged file is kept beside the new one.
package ckpt
