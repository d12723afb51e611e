package ckpt

import (
	"errors"
	"fmt"
)

// Sentinel errors. Errors returned by the Store wrap one of them, so callers
// test with errors.Is; the message itself is one line that says what was
// refused and which checkpoint it was.
var (
	// ErrNotFound: no such key, epoch or chunk.
	ErrNotFound = errors.New("ckpt: not found")
	// ErrCorrupt: a checksum did not match or a value could not be decoded.
	ErrCorrupt = errors.New("ckpt: checkpoint is corrupt")
	// ErrTruncated: a stored value is shorter than it says it is.
	ErrTruncated = errors.New("ckpt: checkpoint is truncated")
	// ErrFormat: the checkpoint was written in a format this build does not read.
	ErrFormat = errors.New("ckpt: unsupported checkpoint format")
	// ErrForeignModule: the checkpoint belongs to another module build,
	// wazero version or Go version.
	ErrForeignModule = errors.New("ckpt: checkpoint made by another build")
	// ErrInUse: the store file is locked by another process (or another
	// Store in this one).
	ErrInUse = errors.New("ckpt: store is in use by another process")
	// ErrWrite: a checkpoint could not be made durable (disk full, I/O
	// error); earlier epochs are untouched.
	ErrWrite = errors.New("ckpt: checkpoint write failed")
	// ErrIndexDamaged: the store's index (the bbolt file) is damaged, so
	// no checkpoint in it can be trusted to be found; Repair rebuilds it
	// from what is readable.
	ErrIndexDamaged = errors.New("ckpt: checkpoint index is damaged")
	// ErrClosed: the Store was closed.
	ErrClosed = errors.New("ckpt: store is closed")
	// ErrBadMsg: a control message between hosts (Msg) could not be
	// decoded (DecodeMsg).
	ErrBadMsg = errors.New("ckpt: bad control message")
	// ErrChunkGone: a capture or a replica relied on a chunk the store
	// held when it began, and a concurrent drop of older epochs freed it
	// before the commit; nothing was written, and a new attempt finds
	// the chunk missing and stores it.
	ErrChunkGone = errors.New("ckpt: a chunk it relied on went from the store")
	// ErrMigrate: a migration or drain was refused (EpochCoordinator.Migrate,
	// Drain); the job goes on as it was.
	ErrMigrate = errors.New("ckpt: migration refused")
)

// Error is a refusal about one checkpoint. Its message is
//
//	ckpt: epoch 7 of job "x" worker 0: <detail>
//
// and it unwraps to Kind (one of the sentinels) and to Cause, if any.
type Error struct {
	Key      Key
	Epoch    uint64
	HasEpoch bool   // false when the error is about a key as a whole
	Detail   string // what went wrong, including its consequence
	Kind     error  // a sentinel
	Cause    error  // an underlying error, or nil
}

func (e *Error) Error() string {
	if e.HasEpoch {
		return fmt.Sprintf("ckpt: epoch %d of job %q worker %d: %s", e.Epoch, e.Key.Job, e.Key.Worker, e.Detail)
	}
	return fmt.Sprintf("ckpt: job %q worker %d: %s", e.Key.Job, e.Key.Worker, e.Detail)
}

// Unwrap lets errors.Is and errors.As see both the sentinel and the cause.
func (e *Error) Unwrap() []error {
	if e.Cause != nil {
		return []error{e.Kind, e.Cause}
	}
	return []error{e.Kind}
}

func epochErr(k Key, epoch uint64, kind error, format string, args ...any) *Error {
	return &Error{Key: k, Epoch: epoch, HasEpoch: true, Kind: kind, Detail: fmt.Sprintf(format, args...)}
}

func keyErr(k Key, kind error, format string, args ...any) *Error {
	return &Error{Key: k, Kind: kind, Detail: fmt.Sprintf(format, args...)}
}

// short renders the first bytes of a hash or digest for messages.
func short(b []byte) string {
	if len(b) > 4 {
		b = b[:4]
	}
	return fmt.Sprintf("%x…", b)
}
