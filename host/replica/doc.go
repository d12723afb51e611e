// Package replica copies a rank's checkpoint from one host's store to
// another's over one stream (a QUIC stream between hosts, under the
// cluster's mutual TLS), sending only the chunk values the other store
// lacks:
//
//	source  OFFER   key, epoch, the manifest as stored, the chunk hashes it uses
//	replica NEED    the indexes of the chunks it does not hold
//	source  VALUE…  each needed chunk's stored value (compressed, checksummed)
//	source  END
//	replica RESULT  ok, or one line saying why the replica was refused
//
// The replica checks every value against its hash and makes the manifest
// and the values durable in one commit (ckpt.Store.AddReplica), so a
// replica is either whole or absent. Every message is a frame: length u32
// (big-endian, the rest of the frame) | type u8 | body.
package replica
