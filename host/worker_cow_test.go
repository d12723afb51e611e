package host

import (
	"bytes"
	"context"
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
			store, err := ckpt.Open(ckpt.Config{Path: filepath.Join(t.TempDir(), "ckpt.db"), NoSync: true, Keep: 1000})
			if err != nil {
				t.Fatal(err)
			}
			defer store.Close()
			ctx := context.Background()
			var (
				w           *Worker
				epoch       uint64
				cow, hinted int
				overlapped  int
				checks      sync.WaitGroup
				mu          sync.Mutex
				bad         []uint64
				prev        *ckpt.Pending
			)
			key := ckpt.Key{Job: "cow"}
			w, err = NewWorker(ctx, Config{
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
					// The guest is paused: its live memory is the capture
					// instant's.
					want := bytes.Clone(w.reserved.Bytes())
					if c.Dirty != nil && c.Dirty.Since != 0 {
						hinted++
					}
					p, err := store.Capture(ckpt.Meta{Key: key, Epoch: epoch, Dirty: c.Dirty}, c.Memory)
					if err != nil {
						return err
					}
					if p.Stats().CopyOnWrite {
						cow++
					}
					prev = p
					checks.Add(1)
					go func(e uint64) { // while the guest rewrites its memory
						defer checks.Done()
						ok := p.Wait() == nil
						if ok {
							m, err := store.Manifest(key, e)
							got := make([]byte, len(want))
							ok = err == nil && store.ReadMemory(m, got) == nil && bytes.Equal(got, want)
						}
						if !ok {
							mu.Lock()
							bad = append(bad, e)
							mu.Unlock()
						}
					}(epoch)
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
			checks.Wait()
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
