//go:build !linux

package lazy

import (
	"time"
)

// Filler is a filler process started ahead; there is none here.
type Filler struct{}

// Spawn always fails here.
func Spawn() (*Filler, error) { return nil, ErrUnsupported }

// Close does nothing.
func (*Filler) Close() {}

// Fill is a lazy restore under way; there is none here.
type Fill struct{}

// ChunkError is a chunk the filler could not read back from the store.
type ChunkError struct {
	Index int
	Msg   string
}

func (e *ChunkError) Error() string { return "lazy: chunk: " + e.Msg }

// Main returns at once: no filler runs here.
func Main() {}

// Supported reports that lazy restore needs Linux's userfaultfd.
func Supported() error { return ErrUnsupported }

// Start always fails here.
func Start(Config) (*Fill, error) { return nil, ErrUnsupported }

func (*Fill) Done() <-chan struct{}      { return nil }
func (*Fill) Err() error                 { return nil }
func (*Fill) Failed() bool               { return false }
func (*Fill) Close()                     {}
func (*Fill) FillerPeak() uint64         { return 0 }
func (*Fill) FillerReady() time.Duration { return 0 }
