package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"

	"github.com/librahost/librahost/host"
)

// stopMode is what Ctrl-C and SIGTERM do to a command.
type stopMode int

const (
	// stopNow: nothing to save, the first signal leaves at once.
	stopNow stopMode = iota
	// stopClean: the first signal stops the work cleanly (a job's last
	// lines written out, a host's jobs cancelled); a second leaves at once.
	stopClean
	// stopCheckpoint: the first signal takes a final checkpoint; a second
	// says it is being finished; a third abandons it, which leaves the
	// store as a kill does: the last durable checkpoint stays usable.
	stopCheckpoint
)

// withSignals runs f with a stop channel closed by the first Ctrl-C or
// SIGTERM, as mode says. A stopped run exits 128 plus the signal's number:
// 130 for Ctrl-C, 143 for SIGTERM.
func withSignals(mode stopMode, stderr io.Writer, f func(stop chan struct{}) (int, error)) error {
	if spec := os.Getenv("LIBRAHOST_FAILPOINTS"); spec != "" {
		if err := host.SetFailpoints(spec); err != nil {
			return err
		}
	}
	stop := make(chan struct{})
	sigs := make(chan os.Signal, 3)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigs)
	done := make(chan struct{})
	defer close(done)
	var first atomic.Int32 // the exit code of the first signal
	go func() {
		for n := 1; ; n++ {
			var s os.Signal
			select {
			case s = <-sigs:
			case <-done:
				return
			}
			code := signalCode(s)
			switch {
			case n == 1 && mode == stopNow:
				os.Exit(code)
			case n == 1:
				first.Store(int32(code))
				if mode == stopCheckpoint {
					fmt.Fprintln(stderr, "librahost: stopping: taking a final checkpoint")
				}
				close(stop)
			case n == 2 && mode == stopCheckpoint:
				fmt.Fprintln(stderr, "librahost: finishing the final checkpoint; press Ctrl-C again to abandon it")
			default:
				if mode == stopCheckpoint {
					fmt.Fprintln(stderr, "librahost: final checkpoint abandoned; `run --resume` continues from the last durable one")
				}
				os.Exit(code)
			}
		}
	}()
	code, err := f(stop)
	if errors.Is(err, host.ErrStopped) {
		if c := first.Load(); c != 0 {
			return exitError{int(c)}
		}
		return exitError{130}
	}
	if err != nil {
		return err
	}
	if code != 0 {
		return exitError{code}
	}
	return nil
}

// signalCode is the exit code of a process ended by s, as a shell reports
// it: 128 plus the signal's number.
func signalCode(s os.Signal) int {
	if n, ok := s.(syscall.Signal); ok {
		return 128 + int(n)
	}
	return 130
}
