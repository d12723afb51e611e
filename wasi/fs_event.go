package wasi

import (
	"errors"
	"sync/atomic"
)

// Event is a counter the host signals and the guest reads through an fd,
// like Linux's eventfd: the fd is nonblocking, fd_read returns the count
// as 8 little-endian bytes and resets it (EAGAIN while it is zero), and a
// poll_oneoff fd_read subscription on it is ready while the count is not
// zero. A Go guest's netpoll can so sleep until the host has something for
// it. Signal may be called from any goroutine.
//
// The count is not checkpoint state: a restored guest keeps its fd, and
// the host, which owns the event, signals it again for what is pending.
type Event struct {
	n    atomic.Uint64
	wake chan struct{} // one token: Signal was called since the last wait
}

// NewEvent returns an Event with a zero count.
func NewEvent() *Event {
	return &Event{wake: make(chan struct{}, 1)}
}

// Signal adds one to the count and wakes a poll_oneoff waiting for it.
func (ev *Event) Signal() {
	ev.n.Add(1)
	select {
	case ev.wake <- struct{}{}:
	default:
	}
}

func (ev *Event) ready() bool { return ev.n.Load() > 0 }

// eventRights are the rights of the event fd.
const eventRights = rightFdRead | rightFdFdstatSetFlags | rightFdFilestatGet | rightPollFdReadwrite

// OpenEvent gives the guest an fd for Config.Event, at the lowest free fd,
// and returns it; a second call returns the fd already open. The fd is
// part of the fd table's checkpoint state.
func (s *System) OpenEvent() (uint32, error) {
	if s.closed {
		return 0, ErrClosed
	}
	if s.event == nil {
		return 0, ErrNoEvent
	}
	for fd, e := range s.fds.m {
		if e.kind == kindEvent {
			return fd, nil
		}
	}
	fd, ok := s.fds.insert(&fdEntry{
		kind: kindEvent, mount: -1, read: true, fdflags: fdflagNonblock, rightsBase: eventRights,
	})
	if !ok {
		return 0, errors.New("wasi: fd table full")
	}
	return fd, nil
}

// readEvent implements fd_read of the event fd: the count, or EAGAIN.
func (s *System) readEvent(iov [][]byte) (int, errno) {
	var b [8]byte
	total := 0
	for _, v := range iov {
		total += len(v)
	}
	if total < len(b) {
		return 0, errnoInval
	}
	n := s.event.n.Swap(0)
	if n == 0 {
		return 0, errnoAgain
	}
	le.PutUint64(b[:], n)
	at := 0
	for _, v := range iov {
		at += copy(v, b[at:])
	}
	return len(b), errnoSuccess
}
