//go:build linux

package host

import (
	"time"

	"golang.org/x/sys/unix"
)

// threadSleep sleeps d on this thread (nanosleep), without Go's timers.
func threadSleep(d time.Duration) {
	ts := unix.NsecToTimespec(int64(d))
	_ = unix.Nanosleep(&ts, nil)
}
