package ckpt

import (
	"encoding/binary"
	"time"
)

// FormatVersion is the manifest format this build writes. It reads every
// format from MinFormatVersion on. Format 2 may use S2-compressed chunks
// (codecS2), which format 1 readers do not know; format 3 chunk values may
// live in segment files, which earlier readers do not know. The manifest
// layout is the same.
const (
	FormatVersion    = 3
	MinFormatVersion = 1
)

// Key names one guest's checkpoint series: a worker of a job.
type Key struct {
	Job    string
	Worker uint32
}

// Binding is what a checkpoint is bound to; a restore into anything else is
// refused with ErrForeignModule. The store adds FormatVersion.
type Binding struct {
	ModuleDigest [32]byte
	Wazero       string
	Go           string
}

// Meta is everything of a checkpoint except linear memory.
type Meta struct {
	Key
	Epoch    uint64
	Binding  Binding
	Globals  []uint64 // every mutable global, in index order
	Asyncify []byte   // asyncify unwind data, nil for Go-native guests
	Host     []byte   // opaque host state
	// HostLater, if set, gives Host instead, once the capture's chunks
	// are written and before its manifest is: host state that is known
	// only after the guest went on (its channel cut, completed by the
	// transport's loop). An error fails the capture. It is not stored.
	HostLater func() ([]byte, error)
	Files     []byte // opaque file-delta blob; chunked when over filesInlineMax
	Created   time.Time

	// Dirty, if set, says which parts of memory may have changed since an
	// earlier capture of the key, so that Capture hashes only those. It
	// is a hint for this one capture and is not stored.
	Dirty *Dirty
}

// Dirty lists the memory written since an earlier capture of the same
// key (from dirty-page tracking). Capture trusts it only if Since is the
// Mark of the key's last capture in this Store; otherwise it hashes all
// of memory, as it does without a hint.
type Dirty struct {
	Since  uint64      // the Mark of the capture the ranges are relative to
	Mark   uint64      // names this capture, for the next hint's Since; not 0
	Ranges [][2]uint64 // byte ranges [start, end) written since

	// Frozen, if set, says that the memory given to Capture is a
	// copy-on-write snapshot still being copied while the guest runs on
	// (host/dirty): Capture then says what it needs and returns at once,
	// and hashes each chunk once it is copied. With Since 0 the hint says
	// nothing else.
	Frozen Frozen
}

// Frozen is a copy-on-write snapshot of a guest's memory as its reader
// sees it: Need says which chunks of chunkSize bytes will be read (once,
// before any Next or Read); Next hands out the next range [lo, hi) of
// chunks to read (lo == hi once all were), the ones the guest waits for
// first, to any number of goroutines; Read copies chunk i as it was at
// the capture instant into dst (grown if short) and returns it, once per
// needed chunk; and Done says the reader is done with it.
type Frozen interface {
	Need(chunkSize int, need []bool)
	Next(chunkSize int) (lo, hi int)
	Read(dst []byte, i, chunkSize int) []byte
	Done()
}

// Stats describes one capture.
type Stats struct {
	Chunks      int           // chunks of linear memory
	Zero        int           // of which all-zero (elided)
	Changed     int           // non-zero chunks that differed from the previous durable capture
	Hashed      int           // chunks hashed (all but the unwritten ones of a Dirty hint)
	BytesCopied int64         // bytes copied while the guest was paused (none with CopyOnWrite: read where they are)
	BytesStored int64         // bytes written to the store (compressed, new chunks only)
	PauseDur    time.Duration // time spent in Capture
	WriteDur    time.Duration // from the end of Capture until durable
	CopyOnWrite bool          // the memory was a Dirty.Frozen snapshot: copied while the guest ran
}

// Manifest is a decoded, checked manifest: the index of one checkpoint.
type Manifest struct {
	Meta
	Format    uint32
	MemSize   uint64
	ChunkSize uint32
	Stats     Stats

	// Chunks has one entry per ChunkSize piece of memory; a zero Hash is an
	// all-zero chunk that was not stored.
	Chunks []Hash
	// FileChunks is set instead of Meta.Files when the file blob was stored
	// as chunks; FilesLen is its length.
	FileChunks []Hash
	FilesLen   uint64
	// StoredBytes is the stored size of every chunk the checkpoint uses.
	StoredBytes uint64
	// Sum is the manifest's checksum (xxh3-64 of its encoding).
	Sum uint64
}

// Info summarises one stored epoch.
type Info struct {
	Epoch       uint64
	Created     time.Time
	MemSize     uint64
	StoredBytes uint64 // stored size of every chunk the epoch uses
	NewBytes    uint64 // bytes this epoch added to the store
	Binding     Binding
	Format      uint32
}

// filesInlineMax is the largest file blob kept inside the manifest.
const filesInlineMax = 1 << 20

// manifestKey is len(job) u16 | job | worker u32 | epoch u64, big-endian,
// so that a cursor walks one key's epochs in order.
func manifestKey(k Key, epoch uint64) []byte {
	b := make([]byte, 0, 2+len(k.Job)+12)
	b = manifestPrefix(b, k)
	return binary.BigEndian.AppendUint64(b, epoch)
}

func manifestPrefix(b []byte, k Key) []byte {
	b = binary.BigEndian.AppendUint16(b, uint16(len(k.Job)))
	b = append(b, k.Job...)
	return binary.BigEndian.AppendUint32(b, k.Worker)
}

// parseManifestKey is the inverse of manifestKey.
func parseManifestKey(b []byte) (Key, uint64, bool) {
	if len(b) < 2 {
		return Key{}, 0, false
	}
	n := int(binary.BigEndian.Uint16(b))
	if len(b) != 2+n+12 {
		return Key{}, 0, false
	}
	k := Key{Job: string(b[2 : 2+n]), Worker: binary.BigEndian.Uint32(b[2+n:])}
	return k, binary.BigEndian.Uint64(b[2+n+4:]), true
}
