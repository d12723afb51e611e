package host

import (
	"errors"
	"os"
	"sync"
	"time"

	"github.com/librahost/librahost/ckpt"
	"github.com/librahost/librahost/host/lazy"
	"github.com/tetratelabs/wazero/sys"
)

// A lazy restore (host/lazy) starts the guest before its memory is read:
// Restore drops the fresh instance's memory, registers it for missing
// faults and lets a filler process copy each chunk in on the guest's
// first touch, and the rest in the background. Until every chunk is in:
//
//   - no checkpoint is taken: a capture waits for the fill (so a
//     checkpoint never holds a chunk that did not read back, and no
//     commit drops the epoch whose values the filler reads), unless the
//     worker is stopped meanwhile, which ends the guest at once;
//   - write tracking and copy-on-write are off (their userfaultfd would
//     need the same memory): the first capture after the fill opens them
//     again.
//
// A chunk that does not read back ends the run: the filler flags it in a
// page it shares with this process and lets the guest past it with
// zeros; from then on the guest's output is dropped (Output.stop), it
// sends no message (a rank's would carry those zeros to the others), its
// next call into the host ends it (checkStop) and it is stopped (a rank
// waiting for a message is woken), and Run returns the store's error for
// that chunk, the one its up-front check gives.
//
// LIBRAHOST_LAZY=off restores eagerly (the memory is read before the
// guest starts), as does a kernel without userfaultfd, a process without
// the right to serve the kernel's faults, or a memory on the Go heap.
var lazyOff = os.Getenv("LIBRAHOST_LAZY") == "off"

// LazyMemory is what a lazy restore reads the memory from: the places of
// its chunks found up front (Chunks), or a snapshot of the index in which
// the filler finds each chunk of Hashes as it fills it (lazy.Config).
type LazyMemory struct {
	ChunkSize   int
	Chunks      []ckpt.ChunkSource // ckpt.Store.MemorySources
	SegmentPath func(seg uint32) string
	Index       *ckpt.IndexSnapshot // ckpt.Store.PinIndex
	Hashes      []ckpt.Hash         // the manifest's, with Index
	// Release, if set, is called once the fill no longer needs the
	// index (it is done, has failed or was closed, or Restore read the
	// memory eagerly), maybe more than once and from any goroutine: it
	// releases the pin.
	Release func()
	// ChunkErr is the store's error for chunk i that did not read back.
	ChunkErr func(i int) error
	// Filler, if set, is a filler process spawned ahead (lazy.Spawn),
	// which Restore takes (and ends if it restores eagerly).
	Filler *lazy.Filler
	// OnResident, if set, is called once every chunk is in, with the
	// time since Restore began and the filler process's figures.
	OnResident func(d time.Duration, filler LazyFiller)
}

// LazyFiller is what a lazy restore's filler process cost.
type LazyFiller struct {
	Ready time.Duration // from Restore's start of the fill until it served faults
	Peak  uint64        // its peak resident memory, in bytes
}

// lazyState is a worker's lazy restore.
type lazyState struct {
	fill  *lazy.Fill
	src   *LazyMemory
	once  sync.Once
	start time.Time
}

// LazyRestore reports whether the last Restore was lazy, and if not why
// (nil: it was).
func (w *Worker) LazyRestore() (bool, error) { return w.lazy != nil, w.lazyWhy }

// LazyRestoreSupported reports whether this process can restore lazily
// here (nil), or why not.
func LazyRestoreSupported() error {
	if lazyOff {
		return errors.New("LIBRAHOST_LAZY=off")
	}
	return lazy.Supported()
}

// restoreLazy starts the fill of buf, the guest's memory grown to the
// checkpoint's size.
func (w *Worker) restoreLazy(buf []byte, src *LazyMemory, start time.Time) error {
	fail := func(why string) error {
		src.abandon()
		return errors.New(why)
	}
	if lazyOff {
		return fail("LIBRAHOST_LAZY=off")
	}
	if w.reserved == nil {
		return fail("the guest's memory is on the Go heap")
	}
	// Tracking's userfaultfd holds the memory: closed until the first
	// capture after the fill.
	w.dirty.close()
	w.dirty = dirtyTrack{}
	f, err := lazy.Start(lazy.Config{Memory: buf, ChunkSize: src.ChunkSize, Chunks: src.Chunks, SegmentPath: src.SegmentPath,
		Index: src.Index, Hashes: src.Hashes, Filler: src.Filler})
	if err != nil {
		src.release()
		return err
	}
	l := &lazyState{fill: f, src: src, start: start}
	w.lazy = l
	for _, o := range []*Output{w.cfg.Stdout, w.cfg.Stderr} {
		if o != nil {
			o.stop = f.Failed
		}
	}
	go func() {
		<-f.Done()
		if f.Err() != nil {
			w.stop() // Run ends in the store's words (lazyWait)
			return
		}
		d := time.Since(start)
		l.close()
		if src.OnResident != nil {
			src.OnResident(d, LazyFiller{Ready: f.FillerReady(), Peak: f.FillerPeak()})
		}
	}()
	return nil
}

// close ends the fill.
func (l *lazyState) close() {
	l.once.Do(func() {
		l.fill.Close()
		l.src.release()
	})
}

// abandon ends the filler spawned ahead and releases the index, for a
// lazy restore that does not start.
func (m *LazyMemory) abandon() {
	if m.Filler != nil {
		m.Filler.Close()
	}
	m.release()
}

func (m *LazyMemory) release() {
	if m.Release != nil {
		m.Release()
	}
}

// lazyFailed reports whether a chunk did not read back: the guest must
// end.
func (w *Worker) lazyFailed() bool { return w.lazy != nil && w.lazy.fill.Failed() }

// errLazyStopped: the worker was stopped while it waited for its fill.
var errLazyStopped = errors.New("host: stopped before the memory was in")

// lazyWait waits, with the guest paused for a capture, until every chunk
// is in; it returns the error that ends the run if one did not read back,
// or errLazyStopped if the worker is stopped first (a job that ends, or
// rolls back, does not wait for its ranks' fills).
func (w *Worker) lazyWait() error {
	l := w.lazy
	if l == nil {
		return nil
	}
	// stop sets stopped before it signals interrupt.
	for !w.stopped.Load() {
		select {
		case <-l.fill.Done():
			if err := w.lazyErr(); err != nil {
				return err
			}
			l.close()
			w.lazy = nil
			return nil
		case <-w.interrupt:
		}
	}
	if err := w.lazyErr(); err != nil {
		return err
	}
	return errLazyStopped
}

// lazyCapture is lazyWait for a capture: a worker stopped first ends its
// guest as checkStop does.
func (w *Worker) lazyCapture() error {
	if err := w.lazyWait(); errors.Is(err, errLazyStopped) {
		return sys.NewExitError(sys.ExitCodeContextCanceled)
	} else if err != nil {
		return err
	}
	return nil
}

// lazyErr is the error of a fill that failed, in the store's words; nil
// if it did not fail. It waits for the fill's report if the flag came
// first.
func (w *Worker) lazyErr() error {
	l := w.lazy
	if l == nil || !l.fill.Failed() && l.fill.Err() == nil {
		return nil
	}
	<-l.fill.Done()
	err := l.fill.Err()
	if err == nil {
		return nil
	}
	// The store's check of the chunk reads the index: the pin goes
	// first, so that the check never waits on a remap of the index
	// that waits on the pin. The filler's lookups need it no more (it
	// checks what it reads against the chunk's hash; the guest is to
	// end).
	l.src.release()
	var ce *lazy.ChunkError
	if errors.As(err, &ce) && l.src.ChunkErr != nil {
		if serr := l.src.ChunkErr(ce.Index); serr != nil {
			err = serr
		}
	}
	l.close()
	return err
}

// closeLazy ends a fill under way, before the memory goes.
func (w *Worker) closeLazy() {
	if w.lazy != nil {
		w.lazy.close()
	}
}
