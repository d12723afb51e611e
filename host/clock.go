package host

import "time"

// guestClock is the monotonic clock a guest sees. It continues from the
// checkpointed value after a restore, in any process: a timer set before
// the checkpoint fires when it would have fired in the uninterrupted run.
type guestClock struct {
	base  int64 // guest time at start
	start time.Time
}

func newGuestClock(base int64) *guestClock {
	return &guestClock{base: base, start: time.Now()}
}

// Nanotime returns the guest's monotonic time in nanoseconds.
func (c *guestClock) Nanotime() int64 {
	return c.base + int64(time.Since(c.start))
}
