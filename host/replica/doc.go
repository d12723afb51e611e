// Package replica copies a rank's checkpoint from one host's store to
// another's over one stream (a QUIC stream between hosts, under the
// cluster's mutual TLS), sending only the chunk values the other store
// lacks:
//
//	source  OFFER   version, key, epoch, the manifest as stored
//	source  VALUE…  the values it pushes at once, if any
//	replica NEED    the indexes of the chunks it does not hold
//	source  VALUE…  the values of those it did not push
//	source  END
//	replica RESULT  ok, or one line saying why the replica was refused (and
//	                whether only because a chunk it held went meanwhile:
//	                ErrAgain, which a new attempt gets past)
//
// A chunk's index is its place in the manifest's list of distinct chunks
// (ckpt.Replica.Chunks), which both ends derive from the manifest. The
// replica host works out its NEED while it reads the values pushed, and
// sends it at once; the source reads it while it pushes. A source that
// knows an epoch the replica host holds (Options.Base) pushes the values
// of the chunks changed since, so that an incremental checkpoint costs no
// round trip before its values; otherwise it pushes nothing and waits for
// the NEED. Values travel as stored (compressed, checksummed), read a few
// batches ahead of the stream.
//
// The replica host checks every value against its hash and writes it to
// its store while more arrive (ckpt.ReplicaIn), and makes the manifest
// and the values durable in one commit, so a replica is either whole or
// absent. It refuses a damaged value, or an OFFER it cannot take, at
// once: it answers RESULT before the END and reads what the source still
// sends until the END; the source stops at its next batch. Every message is a frame: length u32
// (big-endian, the rest of the frame) | type u8 | body.
package replica
