package memalloc

import "fmt"

// ReserveError reports a failed reservation; the memory then falls back to
// the Go heap.
type ReserveError struct {
	Bytes uint64
	Err   error
}

func (e *ReserveError) Error() string {
	return fmt.Sprintf("memalloc: reserving %d bytes: %v", e.Bytes, e.Err)
}

func (e *ReserveError) Unwrap() error { return e.Err }
