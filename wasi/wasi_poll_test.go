package wasi

import (
	"context"
	"io"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tetratelabs/wazero/api"
)

// clockSub writes a clock subscription at off.
func (h *harness) clockSub(off uint32, userdata uint64, id uint32, timeout uint64, abs bool) {
	b := make([]byte, subscriptionSize)
	le.PutUint64(b, userdata)
	b[8] = eventtypeClock
	le.PutUint32(b[16:], id)
	le.PutUint64(b[24:], timeout)
	if abs {
		le.PutUint16(b[40:], subclockAbstime)
	}
	h.write(off, b)
}

func (h *harness) fdSub(off uint32, userdata uint64, typ uint8, fd uint32) {
	b := make([]byte, subscriptionSize)
	le.PutUint64(b, userdata)
	b[8] = typ
	le.PutUint32(b[16:], fd)
	h.write(off, b)
}

const (
	subsAt   = 1024
	eventsAt = 4096
	neventAt = 8192
)

func TestPollClocks(t *testing.T) {
	h := newHarness(t, Config{})
	now := func(id uint32) uint64 {
		if e := h.call("clock_time_get", uint64(id), 0, 100); e != 0 {
			t.Fatalf("clock_time_get: %d", e)
		}
		return h.u64(100)
	}
	for _, tc := range []struct {
		name    string
		id      uint32
		timeout func() uint64
		abs     bool
	}{
		{"relative monotonic", clockMonotonic, func() uint64 { return 20e6 }, false},
		{"relative realtime", clockRealtime, func() uint64 { return 20e6 }, false},
		{"absolute monotonic", clockMonotonic, func() uint64 { return now(clockMonotonic) + 20e6 }, true},
		{"absolute realtime", clockRealtime, func() uint64 { return now(clockRealtime) + 20e6 }, true},
		{"cputime", clockProcessCputimeID, func() uint64 { return 20e6 }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h.clockSub(subsAt, 42, tc.id, tc.timeout(), tc.abs)
			start := time.Now()
			if e := h.call("poll_oneoff", subsAt, eventsAt, 1, neventAt); e != 0 {
				t.Fatalf("errno %d", e)
			}
			// Never early; the upper bound only catches a wrong unit (a
			// loaded machine may wake it late).
			if d := time.Since(start); d < 19*time.Millisecond || d > 10*time.Second {
				t.Errorf("slept %v", d)
			}
			if n := h.u32(neventAt); n != 1 {
				t.Fatalf("nevents %d", n)
			}
			if ud := h.u64(eventsAt); ud != 42 {
				t.Errorf("userdata %d", ud)
			}
			if ev := h.read(eventsAt+8, 3); ev[0] != 0 || ev[2] != eventtypeClock {
				t.Errorf("event %v", ev)
			}
		})
	}
}

func TestPollErrors(t *testing.T) {
	h := newHarness(t, Config{})
	if e := h.call("poll_oneoff", subsAt, eventsAt, 0, neventAt); e != errnoInval {
		t.Errorf("no subscriptions: %d", e)
	}
	if e := h.call("poll_oneoff", 1<<20, eventsAt, 1, neventAt); e != errnoFault {
		t.Errorf("bad in: %d", e)
	}
	h.clockSub(subsAt, 1, 99, 0, false)
	if e := h.call("poll_oneoff", subsAt, eventsAt, 1, neventAt); e != 0 || h.read(eventsAt+8, 1)[0] != byte(errnoInval) {
		t.Errorf("bad clock id: %d %v", e, h.read(eventsAt+8, 1))
	}
	h.fdSub(subsAt, 1, eventtypeFdRead, 77)
	if e := h.call("poll_oneoff", subsAt, eventsAt, 1, neventAt); e != 0 || h.read(eventsAt+8, 1)[0] != byte(errnoBadf) {
		t.Errorf("bad fd: %d", e)
	}
}

func TestPollStdin(t *testing.T) {
	pr, pw := ioPipe()
	h := newHarness(t, Config{Stdin: pr})
	h.fdSub(subsAt, 7, eventtypeFdRead, 0)
	// The clock (userdata 8) fires only if the readiness (7) is missed,
	// whenever the write comes.
	h.clockSub(subsAt+subscriptionSize, 8, clockMonotonic, uint64(time.Hour), false)
	go pw.Write([]byte("abc"))
	if e := h.call("poll_oneoff", subsAt, eventsAt, 2, neventAt); e != 0 {
		t.Fatalf("errno %d", e)
	}
	if n := h.u32(neventAt); n != 1 || h.u64(eventsAt) != 7 || h.u64(eventsAt+16) != 3 {
		t.Fatalf("nevents %d userdata %d nbytes %d", n, h.u64(eventsAt), h.u64(eventsAt+16))
	}
}

type enterFunc func(ctx context.Context, mod api.Module) bool

func (f enterFunc) Enter(ctx context.Context, mod api.Module) bool { return f(ctx, mod) }

func TestPollInterruptNoHooks(t *testing.T) {
	intr := make(chan struct{}, 1)
	h := newHarness(t, Config{Interrupt: intr})
	// An hour's sleep, ended by the interrupt alone (the poll takes it
	// whether it comes before or during the sleep); one not ended hangs
	// until go test's -timeout.
	h.clockSub(subsAt, 5, clockMonotonic, uint64(time.Hour), false)
	intr <- struct{}{}
	if e := h.call("poll_oneoff", subsAt, eventsAt, 1, neventAt); e != 0 {
		t.Fatalf("errno %d", e)
	}
	if h.u32(neventAt) != 1 || h.u64(eventsAt) != 5 {
		t.Fatal("clock event not reported")
	}
}

func TestPollInterruptUnwind(t *testing.T) {
	intr := make(chan struct{}, 1)
	// Enter is called on entry to the import, then by the interrupted
	// poll: the host unwinds at the second call only.
	var enters atomic.Int32
	hooks := enterFunc(func(context.Context, api.Module) bool { return enters.Add(1) == 2 })
	// The guest's clock stands still unless the test moves it: the sleep
	// is ended by the interrupt alone, and the repeated call by its
	// deadline in guest time, however fast the machine.
	var clock atomic.Int64
	cfg := Config{Interrupt: intr, Hooks: hooks, Nanotime: clock.Load}
	h := newHarness(t, cfg)
	h.clockSub(subsAt, 5, clockMonotonic, uint64(400*time.Millisecond), false)
	h.write(neventAt, []byte{0xaa, 0xaa, 0xaa, 0xaa})
	intr <- struct{}{} // the poll takes it before or during its sleep, and unwinds
	if e := h.call("poll_oneoff", subsAt, eventsAt, 1, neventAt); e != 0 {
		t.Fatalf("errno %d", e)
	}
	if h.u32(neventAt) != 0xaaaaaaaa {
		t.Fatal("unwound call wrote results")
	}
	if !h.s.hasPending || h.s.pendingStart != 0 {
		t.Fatalf("pending start %d (%v), want the call's start, 0", h.s.pendingStart, h.s.hasPending)
	}
	snap, err := h.s.Snapshot()
	if err != nil {
		t.Fatal(err)
	}

	// Rewind in a fresh instance restored from the snapshot, at the guest
	// time the sleep ends: the repeated call counts from the original
	// call's start, so it returns at once (one that counted from its own
	// start would sleep on).
	clock.Store(int64(400 * time.Millisecond))
	h2 := newHarness(t, cfg)
	if err := h2.s.Restore(snap); err != nil {
		t.Fatal(err)
	}
	if !h2.s.hasPending || h2.s.pendingStart != 0 {
		t.Fatalf("restored pending start %d (%v), want 0", h2.s.pendingStart, h2.s.hasPending)
	}
	h2.clockSub(subsAt, 5, clockMonotonic, uint64(400*time.Millisecond), false)
	if e := h2.call("poll_oneoff", subsAt, eventsAt, 1, neventAt); e != 0 {
		t.Fatalf("errno %d", e)
	}
	if h2.u32(neventAt) != 1 || h2.u64(eventsAt) != 5 {
		t.Fatal("clock event not reported")
	}
	if h2.s.hasPending {
		t.Fatal("pending deadline not consumed")
	}
}

func ioPipe() (*io.PipeReader, *io.PipeWriter) { return io.Pipe() }
