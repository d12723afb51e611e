package transport

import (
	"math/rand/v2"
	"slices"
	"sync"
	"time"
)

// Faults says how a FaultLink mistreats the buffers sent through it. The
// zero value changes nothing. Each buffer (one or more frames) is treated
// as one packet: dropped with probability Drop, else sent twice with
// probability Duplicate, and held back behind the next buffer with
// probability Reorder; then, with Delay or Jitter, it arrives after Delay
// plus a uniform [0, Jitter) — so jitter reorders too.
//
// The first buffer sent through a FaultLink (the link's HELLO) passes
// unharmed: a real link delivers its handshake reliably or not at all.
//
// The decisions come from a PCG generator seeded with Seed and are drawn in
// the order buffers are sent, so a run that sends the same buffers in the
// same order sees the same faults.
type Faults struct {
	Drop, Duplicate, Reorder float64
	Delay, Jitter            time.Duration
	Seed                     uint64
}

// Enabled reports whether f changes anything.
func (f Faults) Enabled() bool {
	return f.Drop > 0 || f.Duplicate > 0 || f.Reorder > 0 || f.Delay > 0 || f.Jitter > 0
}

// FaultLink is a Link that injects Faults into the buffers it sends and
// drops everything, both ways, while partitioned. Wrap both ends of a
// connection to disturb both directions.
type FaultLink struct {
	l Link
	f Faults

	mu        sync.Mutex
	rng       *rand.Rand
	held      []byte    // a reordered buffer waiting for the next one
	partUntil time.Time // partitioned while now < partUntil
	delayed   []delayedBuf
	wake      chan struct{}
	sendErr   error
	started   bool // the first buffer went out
	closed    bool
	done      chan struct{}
}

type delayedBuf struct {
	due time.Time
	n   uint64 // tie-break: send order
	b   []byte
}

// WithFaults wraps l. With Delay or Jitter it starts a goroutine that
// sends delayed buffers in due order; Close stops it.
func WithFaults(l Link, f Faults) *FaultLink {
	fl := &FaultLink{l: l, f: f, rng: rand.New(rand.NewPCG(f.Seed, f.Seed^0x9e3779b97f4a7c15)),
		wake: make(chan struct{}, 1), done: make(chan struct{})}
	if f.Delay > 0 || f.Jitter > 0 {
		go fl.delayLoop()
	}
	return fl
}

// Partition drops every buffer sent or received until the given time.
func (fl *FaultLink) Partition(until time.Time) {
	fl.mu.Lock()
	fl.partUntil = until
	fl.mu.Unlock()
}

// Heal ends a partition now.
func (fl *FaultLink) Heal() { fl.Partition(time.Time{}) }

func (fl *FaultLink) partitioned() bool {
	return !fl.partUntil.IsZero() && time.Now().Before(fl.partUntil)
}

// Send applies the faults to buf and passes what survives to the wrapped
// link. A dropped buffer is not an error.
func (fl *FaultLink) Send(buf []byte) error {
	fl.mu.Lock()
	if err := fl.sendErr; err != nil {
		fl.mu.Unlock()
		return err
	}
	if !fl.started {
		fl.started = true
		fl.mu.Unlock()
		return fl.l.Send(buf)
	}
	if fl.partitioned() || fl.rng.Float64() < fl.f.Drop {
		fl.mu.Unlock()
		return nil
	}
	out := make([][]byte, 0, 3)
	out = append(out, buf)
	if fl.rng.Float64() < fl.f.Duplicate {
		out = append(out, buf)
	}
	if fl.rng.Float64() < fl.f.Reorder {
		if fl.held == nil {
			fl.held = slices.Clone(buf) // goes out after the next buffer
			out = out[1:]
		}
	} else if fl.held != nil {
		out = append(out, fl.held)
		fl.held = nil
	}
	if fl.f.Delay > 0 || fl.f.Jitter > 0 {
		now := time.Now()
		for _, b := range out {
			d := fl.f.Delay
			if fl.f.Jitter > 0 {
				d += time.Duration(fl.rng.Int64N(int64(fl.f.Jitter)))
			}
			fl.delayed = append(fl.delayed, delayedBuf{due: now.Add(d), b: slices.Clone(b)})
		}
		fl.mu.Unlock()
		select {
		case fl.wake <- struct{}{}:
		default:
		}
		return nil
	}
	fl.mu.Unlock()
	for _, b := range out {
		if err := fl.l.Send(b); err != nil {
			return err
		}
	}
	return nil
}

func (fl *FaultLink) delayLoop() {
	var timer *time.Timer
	for {
		fl.mu.Lock()
		if fl.closed {
			fl.mu.Unlock()
			return
		}
		var wait <-chan time.Time
		if len(fl.delayed) > 0 {
			i := 0
			for j, d := range fl.delayed {
				if d.due.Before(fl.delayed[i].due) {
					i = j
				}
			}
			d := fl.delayed[i]
			if dt := time.Until(d.due); dt > 0 {
				if timer == nil {
					timer = time.NewTimer(dt)
				} else {
					timer.Reset(dt)
				}
				wait = timer.C
			} else {
				fl.delayed = slices.Delete(fl.delayed, i, i+1)
				fl.mu.Unlock()
				if err := fl.l.Send(d.b); err != nil {
					fl.mu.Lock()
					fl.sendErr = err
					fl.mu.Unlock()
				}
				continue
			}
		}
		fl.mu.Unlock()
		select {
		case <-wait:
		case <-fl.wake:
		case <-fl.done:
			return
		}
	}
}

// Recv returns the next buffer from the wrapped link, dropping those that
// arrive while partitioned.
func (fl *FaultLink) Recv() ([]byte, error) {
	for {
		b, err := fl.l.Recv()
		if err != nil {
			return nil, err
		}
		fl.mu.Lock()
		p := fl.partitioned()
		fl.mu.Unlock()
		if !p {
			return b, nil
		}
	}
}

// Close closes the wrapped link; delayed buffers are lost.
func (fl *FaultLink) Close() error {
	fl.mu.Lock()
	if !fl.closed {
		fl.closed = true
		close(fl.done)
	}
	fl.mu.Unlock()
	return fl.l.Close()
}
