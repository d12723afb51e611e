package host

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"testing"

	"github.com/librahost/librahost/ckpt"
	"github.com/librahost/librahost/host/dirty"
)

// A copy-on-write capture stores the memory of the capture instant, byte
// for byte, although the guest rewrites the pages being copied as soon as
// it goes on: with write tracking off (a guest that rewrites all of its
// memory every round), with it on (one that writes a little), with
// captures that overlap (each taken without waiting for the one before to
// be written), and with the stop-and-copy capture that stays where
// copy-on-write cannot be used, or where the memory is smaller than
// cowMinMemory.
func TestCOWCaptureWhileWriting(t *testing.T) {
	cowWorks := dirty.SupportedCOW() == nil
	module := testGuest(t, "testdata/mem")
	for _, tc := range []struct {
		name     string
		args     []string
		cowOff   bool
		tracking bool
		overlap  bool
		small    bool // cowMinMemory as it is: the guest's memory is below it
	}{
		{"untracked", []string{"mem", "16", "1000", "8", "ckpt"}, false, false, false, false},
		{"tracked", []string{"mem", "16", "1", "16", "ckpt"}, false, true, false, false},
		{"overlapping-untracked", []string{"mem", "16", "1000", "8", "ckpt"}, false, false, true, false},
		// A guest that writes more than 1/dirtyKeepRatio of its memory
		// between captures is tracked only while the faults measured on
		// this machine cost less than hashing: 1 ‰ stays tracked on a
		// loaded machine too.
		{"overlapping-tracked", []string{"mem", "16", "1", "16", "ckpt"}, false, true, true, false},
		{"stop-and-copy", []string{"mem", "16", "1000", "6", "ckpt"}, true, false, false, false},
		{"small-memory", []string{"mem", "2", "1000", "6", "ckpt"}, false, false, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			defer func(old bool, min int) { cowOff, cowMinMemory = old, min }(cowOff, cowMinMemory)
			cowOff = tc.cowOff
			if !tc.small {
				cowMinMemory = 0
			}
			checks := newStoredChecks(t)
			ctx := context.Background()
			var (
				w           *Worker
				epoch       uint64
				cow, hinted int
				overlapped  int
				prev        *ckpt.Pending
			)
			w, err := NewWorker(ctx, Config{
				Module: module, Args: tc.args,
				OnPause: func(c *Capture) error {
					epoch++
					if prev != nil && !tc.overlap { // one capture at a time, as the drivers do
						if err := prev.Wait(); err != nil {
							return err
						}
					}
					if prev != nil && prev.Err() == nil {
						select {
						case <-prev.Done():
						default:
							overlapped++ // the one before is still being written
						}
					}
					if c.Dirty != nil && c.Dirty.Since != 0 {
						hinted++
					}
					p, err := checks.capture(w, c, epoch)
					if err != nil {
						return err
					}
					if p.Stats().CopyOnWrite {
						cow++
					}
					prev = p
					return nil
				},
			})
			if err != nil {
				t.Fatal(err)
			}
			defer w.Close(ctx)
			if code, err := w.Run(ctx); err != nil || code != 0 {
				t.Fatalf("run: %d %v", code, err)
			}
			bad := checks.wait()
			var faults, copied uint64
			if w.dirty.t != nil {
				faults, copied = w.dirty.t.Faults()
			}
			t.Logf("%d captures, %d copy-on-write, %d hinted, %d taken while the one before was written; %d faults, %d blocks copied", epoch, cow, hinted, overlapped, faults, copied)
			if len(bad) > 0 {
				t.Fatalf("captures %v differ from the memory of their instant", bad)
			}
			switch {
			case epoch < 6:
				t.Fatalf("only %d captures", epoch)
			case tc.cowOff || tc.small || !cowWorks:
				if cow != 0 {
					t.Fatalf("%d copy-on-write captures where it cannot or should not be used", cow)
				}
			case cow != int(epoch):
				t.Fatalf("%d of %d captures were copy-on-write", cow, epoch)
			case faults == 0:
				t.Fatal("the guest never wrote to a page being copied")
			case tc.tracking && dirty.Supported() == nil && hinted == 0:
				t.Fatal("write tracking never gave a hint")
			}
		})
	}
}

// A guest that writes all over its memory right after each checkpoint,
// faster than the capture reads it, keeps the copy-on-write pool to its
// size: when a copy fills the pool, the handler zeroes the guest's
// preemption counter before the guest goes on from its fault, and the
// guest calls libra.preempt at its next loop head and waits there
// (Throttle) until the capture has read what the pool holds. Before, it
// went on until its counter ran out (about 2^20 instructions) and most of
// the blocks it faulted on were copied beyond the pool (here 158 in a run,
// 63 held at once). Every stored checkpoint still equals the guest's
// memory at its pause.
func TestCOWPoolGuestWriter(t *testing.T) {
	if err := dirty.SupportedCOW(); err != nil {
		t.Skip(err)
	}
	const (
		pool   = 4
		rounds = 4
		// The guest has one writing thread, which writes one byte between
		// two checks in its loop: a block beyond the pool at most now and
		// then (a loop-free function of the guest's runtime that writes
		// two blocks), not one a block.
		maxOverflow = 2 * rounds
	)
	defer func(p int) { cowPoolBlocks = p }(cowPoolBlocks)
	cowPoolBlocks = pool
	module := testGuest(t, "testdata/mem")
	checks := newStoredChecks(t)
	ctx := context.Background()
	var (
		w     *Worker
		epoch uint64
		prev  *ckpt.Pending
	)
	w, err := NewWorker(ctx, Config{
		Module: module, Args: []string{"mem", "128", "500", fmt.Sprint(rounds), "ckpt", "spray"},
		OnPause: func(c *Capture) error {
			epoch++
			if prev != nil { // one capture at a time, as the drivers do
				if err := prev.Wait(); err != nil {
					return err
				}
			}
			p, err := checks.capture(w, c, epoch)
			if err != nil {
				return err
			}
			if !p.Stats().CopyOnWrite {
				return fmt.Errorf("capture %d was not copy-on-write", epoch)
			}
			prev = p
			return nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close(ctx)
	if w.counterWord == nil {
		t.Fatal("the guest's preemption counter was not found")
	}
	if code, err := w.Run(ctx); err != nil || code != 0 {
		t.Fatalf("run: %d %v", code, err)
	}
	bad := checks.wait()
	w.dirty.t.Idle()
	st := w.dirty.t.Pool()
	faults, copied := w.dirty.t.Faults()
	t.Logf("%d captures; pool %+v; %d faults, %d blocks copied; %d preempt calls", epoch, st, faults, copied, w.preempts.Load())
	switch {
	case len(bad) > 0:
		t.Fatalf("captures %v differ from the memory of their instant", bad)
	case epoch != rounds:
		t.Fatalf("%d captures, want %d", epoch, rounds)
	case copied <= pool:
		t.Fatalf("%d blocks copied: the guest did not fill the pool", copied)
	case st.Overflow > maxOverflow || st.Peak > pool+maxOverflow:
		t.Fatalf("pool %+v: %d blocks copied beyond it, more than %d", st, st.Overflow, maxOverflow)
	}
}

// storedChecks stores a worker's captures and checks each, while the
// guest goes on, against the guest's memory at its pause.
type storedChecks struct {
	store *ckpt.Store
	key   ckpt.Key
	wg    sync.WaitGroup
	mu    sync.Mutex
	bad   []uint64
}

func newStoredChecks(t *testing.T) *storedChecks {
	store, err := ckpt.Open(ckpt.Config{Path: filepath.Join(t.TempDir(), "ckpt.db"), NoSync: true, Keep: 1000})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	return &storedChecks{store: store, key: ckpt.Key{Job: "cow"}}
}

// capture stores c, paused (OnPause), as checkpoint epoch, and checks in
// the background that the stored memory equals the memory now.
func (sc *storedChecks) capture(w *Worker, c *Capture, epoch uint64) (*ckpt.Pending, error) {
	want := bytes.Clone(w.reserved.Bytes()) // the paused guest's memory is the capture instant's
	p, err := sc.store.Capture(ckpt.Meta{Key: sc.key, Epoch: epoch, Dirty: c.Dirty}, c.Memory)
	if err != nil {
		return nil, err
	}
	sc.wg.Add(1)
	go func() { // while the guest rewrites its memory
		defer sc.wg.Done()
		if err := p.Wait(); err == nil {
			m, err := sc.store.Manifest(sc.key, epoch)
			got := make([]byte, len(want))
			if err == nil && sc.store.ReadMemory(m, got) == nil && bytes.Equal(got, want) {
				return
			}
		}
		sc.mu.Lock()
		sc.bad = append(sc.bad, epoch)
		sc.mu.Unlock()
	}()
	return p, nil
}

// wait waits for every check and returns the epochs stored unequal.
func (sc *storedChecks) wait() []uint64 {
	sc.wg.Wait()
	return sc.bad
}
