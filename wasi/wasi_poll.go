package wasi

import (
	"context"
	"math"
	"time"

	"github.com/tetratelabs/wazero/api"
)

// Subscription and event layout.
const (
	subscriptionSize = 48
	eventSize        = 32

	eventtypeClock   = 0
	eventtypeFdRead  = 1
	eventtypeFdWrite = 2

	subclockAbstime = 1
)

var pollFuncs = []hostFunc{
	{"poll_oneoff", []api.ValueType{i32, i32, i32, i32}, pollOneoff},
}

type pollEvent struct {
	userdata uint64
	err      errno
	typ      uint8
	nbytes   uint64
}

type pollClock struct {
	userdata uint64
	deadline int64 // guest monotonic ns
}

func pollOneoff(s *System, ctx context.Context, mod api.Module, st []uint64) errno {
	in, out, n, neventsPtr := uint32(st[0]), uint32(st[1]), uint32(st[2]), uint32(st[3])
	if n == 0 {
		return errnoInval
	}
	if n > math.MaxUint32/subscriptionSize {
		return errnoFault
	}
	subs, ok := memRead(mod, in, n*subscriptionSize)
	if !ok {
		return errnoFault
	}
	if _, ok := memRead(mod, out, n*eventSize); !ok {
		return errnoFault
	}

	// start is "now" for relative clocks: after an unwind, the repeated
	// call uses the time of the original one.
	now := s.nanotime()
	start := now
	if s.hasPending {
		start, s.hasPending = s.pendingStart, false
	}

	var events []pollEvent
	var clocks []pollClock
	var waits []pollWait
	for i := uint32(0); i < n; i++ {
		sub := subs[i*subscriptionSize:]
		ud := le.Uint64(sub)
		switch typ := sub[8]; typ {
		case eventtypeClock:
			id, timeout, flags := le.Uint32(sub[16:]), int64(le.Uint64(sub[24:])), le.Uint16(sub[40:])
			if flags&^subclockAbstime != 0 {
				return errnoInval
			}
			abs := flags&subclockAbstime != 0
			var dl int64
			switch id {
			case clockRealtime:
				if abs {
					dl = now + (timeout - s.walltimeNanos())
				} else {
					dl = addSat(start, timeout)
				}
			case clockMonotonic, clockProcessCputimeID, clockThreadCputimeID:
				if abs {
					dl = timeout
				} else {
					dl = addSat(start, timeout)
				}
			default:
				events = append(events, pollEvent{ud, errnoInval, typ, 0})
				continue
			}
			clocks = append(clocks, pollClock{ud, dl})
		case eventtypeFdRead, eventtypeFdWrite:
			ev, wait := s.pollFD(ud, typ, le.Uint32(sub[16:]))
			if wait != 0 {
				waits = append(waits, pollWait{ud, wait})
				continue
			}
			events = append(events, ev)
		default:
			return errnoInval
		}
	}

	intr := s.intr
	fireAll := false // an interrupt ends every sleep early
	for {
		now = s.nanotime()
		for _, c := range clocks {
			if c.deadline <= now || fireAll {
				events = append(events, pollEvent{userdata: c.userdata, typ: eventtypeClock})
			}
		}
		for _, w := range waits {
			if n, ok := s.readable(w.kind); ok {
				events = append(events, pollEvent{w.userdata, 0, eventtypeFdRead, n})
			}
		}
		if len(events) > 0 {
			break
		}
		if s.det != nil && len(clocks) > 0 {
			// Virtual time: jump to the earliest deadline.
			earliest := clocks[0].deadline
			for _, c := range clocks[1:] {
				earliest = min(earliest, c.deadline)
			}
			s.det.sleepUntil(earliest)
			continue
		}
		var timer <-chan time.Time
		stop := func() bool { return false }
		if len(clocks) > 0 {
			earliest := clocks[0].deadline
			for _, c := range clocks[1:] {
				earliest = min(earliest, c.deadline)
			}
			t := time.NewTimer(time.Duration(earliest - now))
			stop = t.Stop
			timer = t.C
		}
		var stdinCh <-chan stdinChunk
		var eventCh <-chan struct{}
		for _, w := range waits {
			if w.kind == kindStdin {
				stdinCh = s.stdin.wait()
			} else {
				eventCh = s.event.wake
			}
		}
		var chunk stdinChunk
		var gotChunk, interrupted, done bool
		select {
		case <-timer:
		case chunk = <-stdinCh:
			gotChunk = true
		case <-eventCh:
		case <-intr:
			interrupted = true
		case <-ctx.Done():
			done = true
		}
		stop()
		switch {
		case done:
			return errnoIntr
		case gotChunk:
			s.stdin.accept(chunk)
		case interrupted:
			if s.hooks == nil {
				// A checkpoint is pending: end the sleep early.
				fireAll = len(clocks) > 0
				intr = nil
				continue
			}
			if s.hooks.Enter(ctx, mod) {
				s.pendingStart, s.hasPending = start, true
				return errnoSuccess
			}
			intr = nil
		}
	}

	if len(events) > int(n) {
		events = events[:n]
	}
	buf, _ := memRead(mod, out, uint32(len(events))*eventSize)
	clear(buf)
	for i, ev := range events {
		b := buf[i*eventSize:]
		le.PutUint64(b, ev.userdata)
		le.PutUint16(b[8:], uint16(ev.err))
		b[10] = ev.typ
		if ev.typ != eventtypeClock {
			le.PutUint64(b[16:], ev.nbytes)
		}
	}
	if !memWriteU32(mod, neventsPtr, uint32(len(events))) {
		return errnoFault
	}
	return errnoSuccess
}

// pollWait is an fd_read subscription that waits for its fd to become
// readable: stdin or the event.
type pollWait struct {
	userdata uint64
	kind     fdKind
}

// pollFD checks an fd subscription: reads of stdin or the event that would
// block return the kind to wait for.
func (s *System) pollFD(ud uint64, typ uint8, fd uint32) (ev pollEvent, wait fdKind) {
	ev = pollEvent{userdata: ud, typ: typ}
	e, ok := s.fds.get(fd)
	if !ok {
		ev.err = errnoBadf
		return ev, 0
	}
	switch e.kind {
	case kindStdin, kindEvent:
		if typ == eventtypeFdWrite {
			ev.err = errnoBadf
		}
	case kindStdout, kindStderr:
		if typ == eventtypeFdRead {
			ev.err = errnoBadf
		}
	case kindDir:
		ev.err = errnoBadf
	}
	if ev.err != errnoSuccess {
		return ev, 0
	}
	// poll_fd_readwrite, with fd_read or fd_write, is the right to
	// subscribe.
	need := rightPollFdReadwrite | rightFdRead
	if typ == eventtypeFdWrite {
		need = rightPollFdReadwrite | rightFdWrite
	}
	if ev.err = e.need(need); ev.err != errnoSuccess {
		return ev, 0
	}
	switch e.kind {
	case kindStdin, kindEvent:
		n, ok := s.readable(e.kind)
		if !ok {
			return ev, e.kind
		}
		ev.nbytes = n
	case kindFile:
		if typ == eventtypeFdRead {
			if fi, err := e.file.Stat(); err == nil && fi.Size() > e.offset {
				ev.nbytes = uint64(fi.Size() - e.offset)
			}
		}
	}
	return ev, 0
}

// readable reports whether a read of stdin or the event would not block,
// and how many bytes it would return.
func (s *System) readable(kind fdKind) (uint64, bool) {
	if kind == kindEvent {
		return 8, s.event.ready()
	}
	s.stdin.poll()
	return uint64(len(s.stdin.buf)), s.stdin.ready()
}

func addSat(a, b int64) int64 {
	if b > 0 && a > math.MaxInt64-b {
		return math.MaxInt64
	}
	return a + b
}
