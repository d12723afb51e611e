package main

import (
	"errors"
	"os"
	"os/signal"
	"syscall"

	"github.com/librahost/librahost/host"
)

// stopOnSignal returns a channel closed by the first Ctrl-C or SIGTERM; a
// second one exits at once. release stops listening.
func stopOnSignal() (stop <-chan struct{}, release func()) {
	c := make(chan struct{})
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	go func() {
		if _, ok := <-sigs; ok {
			close(c)
		}
		if _, ok := <-sigs; ok {
			os.Exit(130)
		}
	}()
	return c, func() { signal.Stop(sigs); close(sigs) }
}

// exitWith maps a job's outcome to the command's: a stop by signal exits
// 130, an error is printed, a guest's exit code is librahost's.
func exitWith(code int, err error) error {
	switch {
	case errors.Is(err, host.ErrStopped):
		return exitError{130}
	case err != nil:
		return err
	case code != 0:
		return exitError{code}
	}
	return nil
}
