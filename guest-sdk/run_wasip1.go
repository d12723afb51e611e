//go:build wasip1

package libra

import (
	"os"
	"runtime/metrics"
	"time"
	_ "unsafe" // for go:linkname
)

// userMain is the program's own main.main. The module is built as a
// reactor, so the Go runtime does not call it: libra_run does.
//
//go:linkname userMain main.main
func userMain()

// The watcher hears from the host through the event fd (libra.event_fd):
// the host signals it when a message arrives, a send window opens, a
// checkpoint comes due or the guest must stop, and a goroutine reading it
// in Go's netpoll wakes the watcher. An idle guest so sleeps in
// poll_oneoff until the host has something for it.
//
// Go's scheduler polls the network only when it has nothing else to run,
// so while the program computes the event goes unseen: the watcher then
// also asks the host every watchEvery. While a checkpoint is pending the
// host forces the running goroutine into the scheduler, which runs due
// timers first, so the watcher sees the checkpoint within about this
// interval. When the watcher finds nothing else runnable the program is
// idle, in netpoll, where the event is seen at once: it then asks only
// every idleEvery, since each wake of an idle guest costs the host about
// as much as a fast tick's whole interval is worth (bench/RESULTS.md).
// Without an event fd it asks every pollEvery.
const (
	watchEvery = 2 * time.Millisecond
	idleEvery  = 20 * time.Millisecond
	pollEvery  = 250 * time.Microsecond
)

var (
	started  bool
	finished = make(chan struct{})
	ticker   *time.Ticker
	interval time.Duration // the ticker's
	runnable = []metrics.Sample{{Name: "/sched/goroutines/runnable:goroutines"}}
	events   = make(chan struct{}, 1) // the host signalled the event fd

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

// readEvents passes each signal of the event fd to the watcher. Reading
// blocks in Go's netpoll. If the fd is missing or fails (the program
// closed it), it wakes the watcher every pollEvery instead.
func readEvents(fd int32) {
	if fd >= 0 {
		f := os.NewFile(uintptr(fd), "libra-event")
		var b [8]byte
		for {
			if _, err := f.Read(b[:]); err != nil {
				break
			}
			notifyWatcher()
		}
	}
	for {
		time.Sleep(pollEvery)
		notifyWatcher()
	}
}

func notifyWatcher() {
	select {
	case events <- struct{}{}:
	default:
	}
}

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

// wakeAll releases every waiter, to look again: a restored instance has
// a new host, whose change count may be below what the waiters saw.
func wakeAll() {
	for _, w := range waiters {
		close(w.wake)
	}
	waiters = waiters[:0]
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
		interval = watchEvery
		ticker = time.NewTicker(interval)
		// The fd is opened before the program runs, so its number is the
		// same in every run.
		go readEvents(hostEventFD())
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
	wakeAll()
	setInterval(watchEvery) // the program may be computing
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
			if askHost() {
				return statusPaused
			}
		case <-events:
			if askHost() {
				return statusPaused
			}
		case <-ticker.C:
			if askHost() {
				return statusPaused
			}
		}
	}
}

// askHost wakes the waiters whose change has come and reports whether a
// checkpoint is due. It then sets the ticker for what the program does.
func askHost() bool {
	p := uint64(hostPending())
	wakeWaiters(p >> 1)
	if p&1 != 0 {
		return true
	}
	metrics.Read(runnable)
	if runnable[0].Value.Kind() == metrics.KindUint64 && runnable[0].Value.Uint64() == 0 {
		setInterval(idleEvery)
	} else {
		setInterval(watchEvery)
	}
	return false
}

func setInterval(d time.Duration) {
	if d != interval {
		interval = d
		ticker.Reset(d)
	}
}

func checkpoint() {
	a := make(chan struct{})
	ckptAsks <- a
	<-a
}
