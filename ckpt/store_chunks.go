package ckpt

import (
	"errors"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// Each chunk value is kept in a bucket of its own, nested in the chunks
// bucket under the chunk's sequence number, as the one value of that
// bucket. bbolt never splits a leaf below two keys, so values stored
// side by side share their leaves in pairs, and dropping one chunk
// rewrote its neighbour: with 1 % of the chunks changing per epoch, a
// commit wrote 3-4 times the bytes of its new chunks. In a bucket of its
// own a value has its own pages; dropping it frees them and rewrites only
// the small leaf of the chunks bucket that names it. Values written
// directly under their sequence number (by earlier versions) are still
// read and dropped.

// chunkValueKey is the key of the value inside a chunk's bucket.
var chunkValueKey = []byte{0}

// getChunk returns the value stored under key in the chunks bucket, or nil.
func getChunk(chunks *bolt.Bucket, key []byte) []byte {
	if b := chunks.Bucket(key); b != nil {
		return b.Get(chunkValueKey)
	}
	return chunks.Get(key)
}

// deleteChunk drops the value stored under key; a missing one is no error.
func deleteChunk(chunks *bolt.Bucket, key []byte) error {
	err := chunks.DeleteBucket(key)
	switch {
	case errors.Is(err, berrors.ErrIncompatibleValue):
		return chunks.Delete(key)
	case errors.Is(err, berrors.ErrBucketNotFound):
		return nil
	}
	return err
}
