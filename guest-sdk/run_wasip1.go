//go:build wasip1

package libra

import (
	"time"
	_ "unsafe" // for go:linkname
)

// userMain is the program's own main.main. The module is built as a
// reactor, so the Go runtime does not call it: libra_run does.
//
//go:linkname userMain main.main
func userMain()

// watchEvery is how often the watcher asks the host whether a checkpoint is
// pending. While one is, the host also forces the running goroutine into
// the scheduler, so the watcher gets to run within about this interval.
const watchEvery = 250 * time.Microsecond

var (
	started  bool
	finished = make(chan struct{})
	ticker   *time.Ticker

	// ckptAsks carries Checkpoint calls to the watcher; acks holds the
	// callers to release once the checkpoint has been taken.
	ckptAsks = make(chan chan struct{})
	acks     []chan struct{}
)

// libraRun runs the program until it finishes or must stop for the host.
// The first call starts main.main in a goroutine; each later call resumes
// it where the previous one left it (in this instance, or in a fresh one
// restored from a checkpoint).
//
//go:wasmexport libra_run
func libraRun() int32 {
	if !started {
		started = true
		ticker = time.NewTicker(watchEvery)
		go func() {
			userMain()
			close(finished)
		}()
	}
	// Back from the host: a checkpoint, if one was due, has been taken.
	for _, a := range acks {
		close(a)
	}
	acks = acks[:0]
	for {
		select {
		case <-finished:
			ticker.Stop()
			return statusFinished
		case a := <-ckptAsks:
			acks = append(acks, a)
			hostCheckpoint()
			return statusPaused
		case <-ticker.C:
			if hostPending() != 0 {
				return statusPaused
			}
		}
	}
}

func checkpoint() {
	a := make(chan struct{})
	ckptAsks <- a
	<-a
}
