//go:build !linux || race

package dirty

import "time"

// Snapshot is not available: see NewCOW.
type Snapshot struct{}

func (*Snapshot) finished() bool { return true }

// Memory returns nil.
func (*Snapshot) Memory() []byte { return nil }

// Need does nothing.
func (*Snapshot) Need(int, []bool) {}

// Read returns dst emptied.
func (*Snapshot) Read(dst []byte, _, _ int) []byte { return dst[:0] }

// Next returns an empty range.
func (*Snapshot) Next(int) (int, int) { return 0, 0 }

// ReadAll returns nil.
func (*Snapshot) ReadAll() []byte { return nil }

// Drop does nothing.
func (*Snapshot) Drop() {}

// Done does nothing.
func (*Snapshot) Done() {}

// Freeze always fails here.
func (t *Tracker) Freeze(uint64) (*Snapshot, error) { return nil, ErrUnsupported }

// Release does nothing: nothing is protected for copy-on-write here.
func Release([]byte) {}

// Faults reports nothing.
func (t *Tracker) Faults() (faults, copied uint64) { return 0, 0 }

// Idle returns at once.
func (t *Tracker) Idle() {}

// Ready returns at once.
func (t *Tracker) Ready() {}

// Hold does nothing.
func (t *Tracker) Hold() func() { return func() {} }

// Waited reports nothing.
func (t *Tracker) Waited() time.Duration { return 0 }

// Pool reports nothing.
func (t *Tracker) Pool() PoolStats { return PoolStats{} }

// Throttle returns at once.
func (t *Tracker) Throttle() bool { return false }

// ZeroWhenFull does nothing.
func (t *Tracker) ZeroWhenFull(*uint32) {}
