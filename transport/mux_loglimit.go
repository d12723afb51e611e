package transport

import (
	"fmt"
	"sync"
	"sync/atomic"
)

// DefaultMaxLogBytes is EndpointConfig.MaxLogBytes's default.
const DefaultMaxLogBytes = 512 << 20

// logRetellTicks is how many ticks apart OnLogFull is told again while the
// logs stay past the limit: a forced checkpoint may have come too early to
// cover what was in flight.
const logRetellTicks = 20

// logLimit keeps the sender logs under EndpointConfig.MaxLogBytes when
// only commits shorten them: past the limit the host is told (OnLogFull)
// so that it forces a checkpoint, and past twice the limit sends wait for
// the commit to make room.
type logLimit struct {
	told atomic.Bool // OnLogFull was told since a commit last shortened the logs

	mu      sync.Mutex
	waiting int // sends waiting for room
	cond    sync.Cond
	refused []chan struct{} // inbox notifies of refused TrySends
}

// admitLog decides whether a send of n bytes by src fits in the sender
// logs; it waits for room if wait, otherwise it refuses and notify
// receives a value once a commit made room.
func (e *Endpoint) admitLog(src uint32, n int64, wait bool, notify chan struct{}) (bool, error) {
	limit := e.cfg.MaxLogBytes
	if e.cfg.StableOnAck || e.logged.Load()+n <= limit {
		return true, nil
	}
	if e.cfg.OnLogFull == nil {
		return false, fmt.Errorf("%w: rank %d's message of %d bytes would take this host's sender logs to %d bytes, past the limit of %d (MaxLogBytes), and no checkpoint is coming to make them stable: take checkpoints, or raise the limit",
			ErrLogFull, src, n, e.logged.Load()+n, limit)
	}
	l := &e.lim
	l.mu.Lock()
	defer l.mu.Unlock()
	for {
		total := e.logged.Load()
		if total+n <= limit {
			return true, nil
		}
		if l.told.CompareAndSwap(false, true) {
			e.do(func() { e.cfg.OnLogFull(e.logged.Load()) })
		}
		if total == 0 || total+n <= 2*limit {
			return true, nil
		}
		if e.closed.Load() {
			return false, ErrClosed
		}
		if !wait {
			l.refused = append(l.refused, notify)
			return false, nil
		}
		l.waiting++
		l.cond.Wait()
		l.waiting--
	}
}

// logFreed is called by the loop when a commit shortened the logs: the
// next send still past the limit tells OnLogFull again (the checkpoint
// forced did not make enough room), and the sends waiting for room try
// again.
func (e *Endpoint) logFreed() {
	l := &e.lim
	l.mu.Lock() // a send deciding to wait holds it: no wakeup is lost
	l.told.Store(false)
	refused := l.refused
	l.refused = nil
	if l.waiting > 0 {
		l.cond.Broadcast()
	}
	l.mu.Unlock()
	for _, c := range refused {
		select {
		case c <- struct{}{}:
		default:
		}
	}
}

// tickLog tells OnLogFull again while the logs stay past the limit.
func (ls *loopState) tickLog(e *Endpoint) {
	if e.cfg.StableOnAck || e.cfg.OnLogFull == nil {
		return
	}
	total := e.logged.Load()
	if total <= e.cfg.MaxLogBytes {
		ls.logTold = 0
		return
	}
	if ls.logTold == 0 {
		ls.logTold = ls.ticks // a send told it
		return
	}
	if ls.ticks-ls.logTold >= logRetellTicks {
		ls.logTold = ls.ticks
		e.cfg.OnLogFull(total)
	}
}
