package wasi

import (
	"errors"
	"sync/atomic"
	"testing"
	"time"
)

const (
	iovAt   = 512
	bufAt   = 600
	nreadAt = 700
	statAt  = 800
)

// readFD calls fd_read on fd with a buffer of n bytes and returns the
// errno and what was read.
func (h *harness) readFD(fd uint32, n uint32) (errno, []byte) {
	h.t.Helper()
	var iov [8]byte
	le.PutUint32(iov[:], bufAt)
	le.PutUint32(iov[4:], n)
	h.write(iovAt, iov[:])
	e := h.call("fd_read", uint64(fd), iovAt, 1, nreadAt)
	if e != 0 {
		return e, nil
	}
	return e, h.read(bufAt, h.u32(nreadAt))
}

func TestEventFD(t *testing.T) {
	if _, err := newHarness(t, Config{}).s.OpenEvent(); !errors.Is(err, ErrNoEvent) {
		t.Fatalf("OpenEvent without an event: %v", err)
	}
	ev := NewEvent()
	h := newHarness(t, Config{Event: ev})
	fd, err := h.s.OpenEvent()
	if err != nil {
		t.Fatal(err)
	}
	if fd != 3 {
		t.Errorf("event fd %d, want the lowest free, 3", fd)
	}
	if again, _ := h.s.OpenEvent(); again != fd {
		t.Errorf("second OpenEvent gave fd %d, first %d", again, fd)
	}
	if e := h.call("fd_fdstat_get", uint64(fd), statAt); e != 0 || le.Uint16(h.read(statAt+2, 2))&fdflagNonblock == 0 {
		t.Fatalf("fdstat: errno %d, flags %v: not nonblocking", e, h.read(statAt+2, 2))
	}
	if e, _ := h.readFD(fd, 8); e != errnoAgain {
		t.Fatalf("read of an unsignalled event: errno %d, want EAGAIN", e)
	}
	h.fdSub(subsAt, 9, eventtypeFdRead, fd)
	h.clockSub(subsAt+subscriptionSize, 10, clockMonotonic, 0, false)
	if e := h.call("poll_oneoff", subsAt, eventsAt, 2, neventAt); e != 0 || h.u32(neventAt) != 1 || h.u64(eventsAt) != 10 {
		t.Fatalf("poll of an unsignalled event: errno %d, %d events, first %d", e, h.u32(neventAt), h.u64(eventsAt))
	}
	for range 3 {
		ev.Signal()
	}
	if e := h.call("poll_oneoff", subsAt, eventsAt, 1, neventAt); e != 0 || h.u32(neventAt) != 1 || h.u64(eventsAt) != 9 || h.u64(eventsAt+16) != 8 {
		t.Fatalf("poll of a signalled event: errno %d, %d events, userdata %d, nbytes %d", e, h.u32(neventAt), h.u64(eventsAt), h.u64(eventsAt+16))
	}
	if e, _ := h.readFD(fd, 4); e != errnoInval {
		t.Errorf("read into 4 bytes: errno %d, want EINVAL", e)
	}
	if e, b := h.readFD(fd, 16); e != 0 || len(b) != 8 || le.Uint64(b) != 3 {
		t.Fatalf("read of a signalled event: errno %d, %v; want the count 3", e, b)
	}
	if e, _ := h.readFD(fd, 8); e != errnoAgain {
		t.Fatalf("read after draining: errno %d, want EAGAIN", e)
	}
	if e := h.call("fd_write", uint64(fd), iovAt, 1, nreadAt); e != errnoBadf {
		t.Errorf("write: errno %d, want EBADF", e)
	}
	if e := h.call("fd_seek", uint64(fd), 0, 0, nreadAt); e != errnoSpipe {
		t.Errorf("seek: errno %d, want ESPIPE", e)
	}
	if e := h.call("fd_filestat_get", uint64(fd), statAt); e != 0 {
		t.Errorf("filestat: errno %d", e)
	}
}

// A poll with nothing but the event fd sleeps until the host signals.
func TestPollEventWakes(t *testing.T) {
	ev := NewEvent()
	h := newHarness(t, Config{Event: ev})
	fd, err := h.s.OpenEvent()
	if err != nil {
		t.Fatal(err)
	}
	h.fdSub(subsAt, 4, eventtypeFdRead, fd)
	// The pause only makes it likely that the poll sleeps before the
	// signal; the test holds either way.
	var signaled atomic.Bool
	go func() {
		time.Sleep(30 * time.Millisecond)
		signaled.Store(true)
		ev.Signal()
	}()
	if e := h.call("poll_oneoff", subsAt, eventsAt, 1, neventAt); e != 0 {
		t.Fatalf("errno %d", e)
	}
	if !signaled.Load() {
		t.Fatal("poll returned before the event was signaled")
	}
	if h.u32(neventAt) != 1 || h.u64(eventsAt) != 4 {
		t.Fatalf("%d events, userdata %d", h.u32(neventAt), h.u64(eventsAt))
	}
}

// The event fd is part of the fd table's checkpoint: a restored System
// has it at the same number, if its config has an event.
func TestEventSnapshot(t *testing.T) {
	h := newHarness(t, Config{Event: NewEvent()})
	fd, err := h.s.OpenEvent()
	if err != nil {
		t.Fatal(err)
	}
	snap, err := h.s.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	ev := NewEvent()
	h2 := newHarness(t, Config{Event: ev})
	if err := h2.s.Restore(snap); err != nil {
		t.Fatal(err)
	}
	ev.Signal()
	if e, b := h2.readFD(fd, 8); e != 0 || le.Uint64(b) != 1 {
		t.Fatalf("read of the restored event fd: errno %d, %v", e, b)
	}
	if again, _ := h2.s.OpenEvent(); again != fd {
		t.Errorf("OpenEvent after restore gave fd %d, want %d", again, fd)
	}
	if err := newHarness(t, Config{}).s.Restore(snap); !errors.Is(err, ErrRestore) {
		t.Fatalf("restore of an event fd without an event: %v", err)
	}
}
