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

	// waitAsks carries goroutines that wait for the host (a message to
	// receive, room in a send window); waiters holds them until the host
	// reports a change.
	waitAsks = make(chan waiter)
	waiters  []waiter
)

// libra.pending returns changes<<1 | checkpoint: bit 0 says a checkpoint
// is due; the rest counts the changes of this worker's inbox and send
// windows, so that a goroutine that found nothing to receive waits for
// the count to move past what it saw.
type waiter struct {
	seen uint64
	wake chan struct{}
}

// hostChanges returns the host's change count.
func hostChanges() uint64 { return uint64(hostPending()) >> 1 }

// waitHost parks the calling goroutine until the host's change count
// moves past seen.
func waitHost(seen uint64) {
	w := waiter{seen: seen, wake: make(chan struct{})}
	waitAsks <- w
	<-w.wake
}

// wakeWaiters releases the waiters whose change has come.
func wakeWaiters(changes uint64) {
	kept := waiters[:0]
	for _, w := range waiters {
		if changes > w.seen {
			close(w.wake)
		} else {
			kept = append(kept, w)
		}
	}
	waiters = kept
}

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
	// Back from the host: a checkpoint, if one was due, has been taken,
	// or something the waiters wait for has happened.
	for _, a := range acks {
		close(a)
	}
	acks = acks[:0]
	wakeWaiters(hostChanges())
	for {
		select {
		case <-finished:
			ticker.Stop()
			return statusFinished
		case a := <-ckptAsks:
			acks = append(acks, a)
			hostCheckpoint()
			return statusPaused
		case w := <-waitAsks:
			waiters = append(waiters, w)
			p := uint64(hostPending())
			wakeWaiters(p >> 1)
			if p&1 != 0 {
				return statusPaused
			}
		case <-ticker.C:
			p := uint64(hostPending())
			wakeWaiters(p >> 1)
			if p&1 != 0 {
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
