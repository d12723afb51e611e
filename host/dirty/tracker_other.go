//go:build !linux

package dirty

import "time"

// Tracker is not available on this platform.
type Tracker struct{}

// New always fails here.
func New([]byte) (*Tracker, error) { return nil, ErrUnsupported }

// Collect is never called on a nil Tracker.
func (t *Tracker) Collect(uint64, func(start, end uint64)) error { return ErrUnsupported }

// Disarm does nothing.
func (t *Tracker) Disarm() error { return nil }

// StartProbe does nothing.
func (t *Tracker) StartProbe(uint64) error { return ErrUnsupported }

// EndProbe reports nothing.
func (t *Tracker) EndProbe() (written, sampled uint64, err error) { return 0, 0, nil }

// Protected reports 0.
func (t *Tracker) Protected() uint64 { return 0 }

// SetLimit does nothing.
func (t *Tracker) SetLimit(uint64) {}

// Tripped reports false.
func (t *Tracker) Tripped() bool { return false }

// Costs reports nothing.
func (t *Tracker) Costs() (fault, read time.Duration) { return 0, 0 }

// FaultUnit reports a page.
func (t *Tracker) FaultUnit() (unit, page uint64) { return 4096, 4096 }

// Armed reports false.
func (t *Tracker) Armed() bool { return false }

// Close does nothing.
func (t *Tracker) Close() error { return nil }

// Supported reports that this platform cannot track writes.
func Supported() error { return ErrUnsupported }

// SupportedCOW reports that this platform cannot make copy-on-write
// captures.
func SupportedCOW() error { return ErrUnsupported }

// NewCOW always fails here.
func NewCOW([]byte) (*Tracker, error) { return nil, ErrUnsupported }

// NewCOWPool always fails here.
func NewCOWPool([]byte, int) (*Tracker, error) { return nil, ErrUnsupported }
