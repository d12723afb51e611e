package host

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/librahost/librahost/ckpt"
)

// run runs the worker with the session's checkpoint triggers.
func (s *Session) run(ctx context.Context) (int, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan struct{})
	defer close(done)
	if s.store != nil {
		stopCtl, err := serveControl(s.cfg.StateDir, s.requestCheckpoint)
		if err != nil {
			fmt.Fprintf(s.cfg.Log, "librahost: warning: %v\n", err)
		} else {
			defer stopCtl()
		}
		go s.triggers(done)
	}
	if s.cfg.Stop != nil {
		go func() {
			select {
			case <-done:
			case <-s.cfg.Stop:
				if s.store == nil {
					cancel() // nothing to save
					return
				}
				s.mu.Lock()
				s.stopping = true
				s.mu.Unlock()
				s.worker.RequestCheckpoint()
			}
		}()
	}
	code, err := s.worker.Run(ctx)
	// A checkpoint still being written is waited for and its outcome
	// reported (a failure in one line); a failure does not change how the
	// guest ended.
	s.waitInflight()
	s.reporting.Wait()
	if errors.Is(err, ErrStopped) || (s.cfg.Stop != nil && isClosed(s.cfg.Stop) && s.store == nil) {
		return 1, ErrStopped
	}
	if err != nil {
		return code, err
	}
	if s.store != nil {
		s.mu.Lock()
		s.rec.Finished = true
		s.rec.Exit = code
		s.rec.Epoch = s.epoch
		werr := writeRecord(s.cfg.StateDir, s.rec)
		s.mu.Unlock()
		if werr != nil {
			fmt.Fprintf(s.cfg.Log, "librahost: warning: the run ended but %s does not say so: %v\n", s.cfg.StateDir, werr)
		}
	}
	return code, nil
}

func isClosed(c <-chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

// triggers requests periodic checkpoints.
func (s *Session) triggers(done <-chan struct{}) {
	periodically(s.cfg.CheckpointEvery, done, s.tick)
}

// tick asks for a periodic checkpoint unless one is being taken or
// written.
func (s *Session) tick() {
	s.mu.Lock()
	busy := s.inflight != nil || s.capturing
	s.mu.Unlock()
	if !busy {
		s.worker.RequestCheckpoint()
	}
}

// periodically calls f every d (if d > 0) until done is closed.
func periodically(d time.Duration, done <-chan struct{}, f func()) {
	if d <= 0 {
		return
	}
	t := time.NewTicker(d)
	defer t.Stop()
	for {
		select {
		case <-done:
			return
		case <-t.C:
			f()
		}
	}
}

// requestCheckpoint asks for a checkpoint and returns a channel that
// reports it once it is durable (or failed).
func (s *Session) requestCheckpoint() <-chan ckptResult {
	c := make(chan ckptResult, 1)
	s.mu.Lock()
	s.waiters = append(s.waiters, c)
	s.mu.Unlock()
	s.worker.RequestCheckpoint()
	return c
}

// onPause captures the paused guest into the store. Compression and the
// durable write go on in the background while the guest runs, except for
// the final checkpoint of a stop, which is waited for.
func (s *Session) onPause(c *Capture) error {
	s.mu.Lock()
	s.capturing = true
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.capturing = false
		s.mu.Unlock()
	}()
	// One write at a time: a capture waits for the one before it.
	if err := s.waitInflight(); err != nil {
		s.finish(0, ckpt.Stats{}, err)
	}
	s.mu.Lock()
	epoch := s.next
	s.next++
	stopping := s.stopping
	s.mu.Unlock()
	// failed reports a checkpoint that could not be taken; the guest goes
	// on, unless this was the final checkpoint of a stop.
	failed := func(err error) error {
		s.finish(epoch, ckpt.Stats{}, err)
		if stopping {
			return stopFailed(err)
		}
		return nil
	}
	files, err := s.worker.CheckpointFiles(epoch)
	if err != nil {
		return failed(err)
	}
	if infos, err := s.store.Epochs(s.key); err == nil && len(infos) > 0 {
		s.worker.ReleaseFiles(infos[0].Epoch)
	}
	meta := ckpt.Meta{
		Key:      s.key,
		Epoch:    epoch,
		Binding:  s.bind,
		Globals:  c.Globals,
		Asyncify: c.Asyncify,
		Host:     c.Host,
		Files:    files,
		Created:  time.Now().UTC(),
		Dirty:    c.Dirty,
	}
	p, err := s.store.Capture(meta, c.Memory)
	if err != nil {
		return failed(err)
	}
	s.mu.Lock()
	s.inflight = p
	s.mu.Unlock()
	s.reporting.Add(1)
	go func() {
		defer s.reporting.Done()
		s.progress(epoch, p, c.Taken)
	}()
	go s.store.Reserve(len(c.Memory)) // for the next capture, if memory grew
	if stopping {
		if err := s.waitInflight(); err != nil {
			return stopFailed(err)
		}
		fmt.Fprintf(s.cfg.Log, "librahost: stopped after checkpoint %d; `librahost run --resume --state %s` continues\n", epoch, s.cfg.StateDir)
		return ErrStopped
	}
	return nil
}

// waitInflight waits for the capture being written and records it.
func (s *Session) waitInflight() error {
	s.mu.Lock()
	p := s.inflight
	s.mu.Unlock()
	if p == nil {
		return nil
	}
	err := p.Wait()
	s.mu.Lock()
	if s.inflight != p {
		s.mu.Unlock()
		return err
	}
	s.inflight = nil
	s.mu.Unlock()
	return err
}

// progress reports a capture once it is durable, with a progress line for
// long writes.
// taken is what the worker spent on the capture before handing it over.
func (s *Session) progress(epoch uint64, p *ckpt.Pending, taken time.Duration) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-p.Done():
			st := p.Stats()
			err := p.Err()
			s.mu.Lock()
			if s.inflight == p {
				s.inflight = nil
			}
			s.mu.Unlock()
			if err == nil {
				s.mu.Lock()
				s.epoch = max(s.epoch, epoch)
				s.rec.Epoch = s.epoch
				if werr := writeRecord(s.cfg.StateDir, s.rec); werr != nil {
					fmt.Fprintf(s.cfg.Log, "librahost: warning: %v\n", werr)
				}
				s.mu.Unlock()
				if s.cfg.Verbose {
					fmt.Fprintf(s.cfg.Log, "librahost: checkpoint %d durable: %s memory (%s hashed), %s written, pause %s (%s), write %s\n",
						epoch, FormatBytes(uint64(st.Chunks)*uint64(64<<10)), FormatBytes(uint64(st.Hashed)*uint64(64<<10)),
						FormatBytes(uint64(st.BytesStored)), (taken + st.PauseDur).Round(time.Microsecond), captureKind(st.CopyOnWrite), st.WriteDur.Round(time.Millisecond))
				}
			}
			s.finish(epoch, st, err)
			return
		case <-t.C:
			done, total := p.Progress()
			fmt.Fprintf(s.cfg.Log, "librahost: checkpoint %d: %s of %s written\n", epoch, FormatBytes(uint64(done)), FormatBytes(uint64(total)))
		}
	}
}

// finish reports a checkpoint's outcome to those who asked for it.
func (s *Session) finish(epoch uint64, st ckpt.Stats, err error) {
	if err != nil {
		fmt.Fprintf(s.cfg.Log, "librahost: checkpoint %d failed: %v\n", epoch, err)
	}
	s.mu.Lock()
	ws := s.waiters
	s.waiters = nil
	s.mu.Unlock()
	for _, w := range ws {
		w <- ckptResult{epoch: epoch, stats: st, err: err}
	}
}

func (s *Session) onFailed(err error) {
	s.finish(0, ckpt.Stats{}, err)
}

// stopFailed is the end of a stop whose final checkpoint failed.
func stopFailed(err error) error {
	return fmt.Errorf("%w (final checkpoint failed: %v)", ErrStopped, err)
}
