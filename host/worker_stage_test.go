package host

import (
	"bytes"
	"context"
	"testing"
)

// A worker staged with an earlier capture, then restored in place with
// only the chunks that changed since, runs as one restored from the later
// capture whole (a migration's target, host/job).
func TestStageRestoreInPlace(t *testing.T) {
	for _, tc := range countGuests {
		t.Run(tc.name, func(t *testing.T) {
			module := testGuest(t, tc.src)
			args := []string{"count", "700"}
			full, early := runCapturing(t, module, args, 100)
			_, late := runCapturing(t, module, args, len(full)*3/4)
			ctx := context.Background()
			var out bytes.Buffer
			w, err := NewWorker(ctx, Config{Module: module, Args: args, Stdout: NewOutput(&out)})
			if err != nil {
				t.Fatal(err)
			}
			defer w.Close(ctx)
			if err := w.Stage(uint64(len(early.mem)), func(mem []byte) error { copy(mem, early.mem); return nil }); err != nil {
				t.Fatal(err)
			}
			const cs = 64 << 10
			changed := 0
			st := late.state()
			st.InPlace = true
			st.ReadMemory = func(dst []byte) error {
				for off := 0; off < len(late.mem); off += cs {
					end := min(off+cs, len(late.mem))
					if off >= len(early.mem) || !bytes.Equal(early.mem[off:min(end, len(early.mem))], late.mem[off:end]) {
						copy(dst[off:end], late.mem[off:end])
						changed++
					}
				}
				return nil
			}
			if err := w.Restore(st); err != nil {
				t.Fatal(err)
			}
			if changed == 0 || changed*cs >= len(late.mem) {
				t.Fatalf("%d chunks of %d changed between the captures: the test shows nothing", changed, len(late.mem)/cs)
			}
			if code, err := w.Run(ctx); err != nil || code != 0 {
				t.Fatalf("run: code %d, %v", code, err)
			}
			if want := full[late.outPos:]; !bytes.Equal(out.Bytes(), want) {
				t.Fatalf("restored in place, the run printed\n%s\nwant\n%s", out.Bytes(), want)
			}
		})
	}
}

// A restore in place needs a staged memory: without one it is refused.
func TestRestoreInPlaceUnstaged(t *testing.T) {
	module := testGuest(t, countGuests[0].src)
	args := []string{"count", "700"}
	_, s := runCapturing(t, module, args, 100)
	st := s.state()
	st.InPlace = true
	if _, err := restoreRun(t, module, args, st); err == nil {
		t.Fatal("a restore in place without a staged memory was taken")
	}
}
