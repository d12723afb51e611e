//go:build !linux

package host

import "time"

// threadSleep sleeps about d (Go's timers: at least a millisecond on
// some platforms).
func threadSleep(d time.Duration) { time.Sleep(d) }
