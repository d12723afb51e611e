package host

import (
	"bytes"
	"context"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/librahost/librahost/ckpt"
	"github.com/librahost/librahost/host/dirty"
)

// Captures that hash only what the worker saw written find the same chunk
// hashes as captures that hash everything, for guests that write little
// of their memory between checkpoints (tracking stays on) and guests that
// rewrite most of it (tracking goes off and comes back).
func TestDirtyHint(t *testing.T) {
	supported := dirty.Supported() == nil
	for _, tc := range []struct {
		name, src string
		args      []string
		heavy     bool
	}{
		{"go-light", "testdata/mem", []string{"mem", "64", "1", "30", "ckpt"}, false},
		{"go-heavy", "testdata/mem", []string{"mem", "16", "400", "14", "ckpt"}, true},
		{"c-count", "testdata/count.c", []string{"count", "600"}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			module := testGuest(t, tc.src)
			store, err := ckpt.Open(ckpt.Config{Path: filepath.Join(t.TempDir(), "ckpt.db"), NoSync: true})
			if err != nil {
				t.Fatal(err)
			}
			defer store.Close()
			ctx := context.Background()
			var epoch uint64
			var hinted, full int
			// The light writer fills its heap, says "ready", then writes
			// little: how many captures land in the fill depends on the
			// machine's speed, so the light phase is judged on its own.
			var stdout bytes.Buffer
			var light, lightHinted int
			w, err := NewWorker(ctx, Config{
				Module: module, Args: tc.args, Stdout: NewOutput(&stdout),
				OnPause: func(c *Capture) error {
					epoch++
					ready := strings.Contains(stdout.String(), "ready")
					if c.Dirty == nil || c.Dirty.Since == 0 && c.Dirty.Ranges == nil {
						full++
					}
					mem := c.Bytes() // copy-on-write: wait for the whole copy
					pa, err := store.Capture(ckpt.Meta{Key: ckpt.Key{Job: "hinted"}, Epoch: epoch, Dirty: c.Dirty}, c.Memory)
					if err != nil {
						return err
					}
					pb, err := store.Capture(ckpt.Meta{Key: ckpt.Key{Job: "hashed"}, Epoch: epoch}, mem)
					if err != nil {
						return err
					}
					st := pa.Stats()
					if st.Hashed < st.Chunks {
						hinted++
					}
					if ready {
						light++
						if st.Hashed < st.Chunks {
							lightHinted++
						}
					}
					if err := pa.Wait(); err != nil {
						return err
					}
					if err := pb.Wait(); err != nil {
						return err
					}
					ma, err := store.Manifest(ckpt.Key{Job: "hinted"}, epoch)
					if err != nil {
						return err
					}
					mb, err := store.Manifest(ckpt.Key{Job: "hashed"}, epoch)
					if err != nil {
						return err
					}
					if !slices.Equal(ma.Chunks, mb.Chunks) {
						t.Errorf("capture %d: the hinted capture's chunks differ from the hashed one's", epoch)
					}
					return nil
				},
			})
			if err != nil {
				t.Fatal(err)
			}
			defer w.Close(ctx)
			done := make(chan struct{})
			defer close(done)
			go func() { // count.c takes a checkpoint only when asked
				for {
					select {
					case <-done:
						return
					case <-time.After(3 * time.Millisecond):
						w.RequestCheckpoint()
					}
				}
			}()
			if code, err := w.Run(ctx); err != nil || code != 0 {
				t.Fatalf("run: %d %v", code, err)
			}
			t.Logf("%d captures: %d hashed only what was written, %d without a hint; after the start %d of %d hashed only what was written",
				epoch, hinted, full, lightHinted, light)
			if epoch < 8 {
				t.Fatalf("only %d captures", epoch)
			}
			switch {
			case !supported:
				if hinted != 0 {
					t.Fatalf("%d hinted captures without write tracking", hinted)
				}
			case !tc.heavy && (light < 8 || lightHinted*2 < light):
				// Most of them: the guest's own collector rewrites much of
				// its heap now and then, and how many captures see that
				// depends on the machine's speed too.
				t.Fatalf("a light writer: only %d of %d captures after its start hashed what was written", lightHinted, light)
			case tc.heavy && full < 2:
				t.Fatalf("a heavy writer: tracking never went off (%d of %d captures hashed everything)", full, epoch)
			}
		})
	}
}

// A guest that rewrites its memory at random between checkpoints is never
// tracked in full: the probes of a sample find it writing too much, so
// its memory is never all write-protected, never all faulted on and split
// into small pages (host/dirty).
func TestDirtyRandomWriter(t *testing.T) {
	supported := dirty.Supported() == nil
	module := testGuest(t, "testdata/mem")
	ctx := context.Background()
	var captures, armed, hinted int
	var size uint64
	w, err := NewWorker(ctx, Config{
		Module: module, Args: []string{"mem", "64", "1000", "12", "ckpt", "random"},
		OnPause: func(c *Capture) error {
			captures++
			size = uint64(len(c.Memory))
			switch {
			case c.Dirty == nil || c.Dirty.Mark == 0: // no hint (perhaps a copy-on-write capture)
			case c.Dirty.Since == 0:
				armed++
			default:
				hinted++
			}
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
	var protected uint64
	if w.dirty.t != nil {
		protected = w.dirty.t.Protected()
	}
	t.Logf("%d captures of %d MiB: %d armed tracking, %d hinted; %d MiB protected in all", captures, size>>20, armed, hinted, protected>>20)
	if captures < 12 {
		t.Fatalf("only %d captures", captures)
	}
	if !supported {
		if armed+hinted != 0 {
			t.Fatalf("%d hints without write tracking", armed+hinted)
		}
		return
	}
	if armed != 0 || hinted != 0 {
		t.Fatalf("a random writer was tracked in full at %d captures, hinted at %d", armed, hinted)
	}
	if protected == 0 || protected >= size {
		t.Fatalf("%d MiB protected over the run, of %d MiB of memory: want some, less than all", protected>>20, size>>20)
	}
}
