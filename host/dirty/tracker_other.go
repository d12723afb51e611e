//go:build !linux

package dirty

// Tracker is not available on this platform.
type Tracker struct{}

// New always fails here.
func New([]byte) (*Tracker, error) { return nil, ErrUnsupported }

// Collect is never called on a nil Tracker.
func (t *Tracker) Collect(uint64, func(start, end uint64)) error { return ErrUnsupported }

// Disarm does nothing.
func (t *Tracker) Disarm() error { return nil }

// Armed reports false.
func (t *Tracker) Armed() bool { return false }

// Close does nothing.
func (t *Tracker) Close() error { return nil }

// Supported reports that this platform cannot track writes.
func Supported() error { return ErrUnsupported }
