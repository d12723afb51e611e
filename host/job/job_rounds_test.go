package job

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// Checkpoints the ranks ask for back to back (the guest's Checkpoint
// call after each round of writes) overlap: two rounds under way at
// once. They still commit in epoch order, each says so once, and the one
// before the newest resumes (its memory read and checked) to the end.
func TestGuestCheckpointsOverlap(t *testing.T) {
	module := testModuleFile(t, "../testdata/mem")
	ctx := context.Background()
	cache := filepath.Join(guests.Dir, "wazero")
	state := filepath.Join(t.TempDir(), "st")
	var out, log bytes.Buffer
	code, err := Run(ctx, Config{ModulePath: module, N: 3, Args: []string{"mem", "16", "10", "8", "ckpt"},
		StateDir: state, Verbose: true, Log: &log, Stdout: &out, CacheDir: cache})
	if err != nil || code != 0 {
		t.Fatalf("run: %d %v\n%s", code, err, log.String())
	}
	var epochs []uint64
	for _, m := range regexp.MustCompile(`checkpoint (\d+) durable`).FindAllStringSubmatch(log.String(), -1) {
		e, _ := strconv.ParseUint(m[1], 10, 64)
		epochs = append(epochs, e)
	}
	if len(epochs) < 8 || !slices.IsSorted(epochs) || len(slices.Compact(slices.Clone(epochs))) != len(epochs) {
		t.Fatalf("checkpoints durable: %v\n%s", epochs, log.String())
	}
	if n := strings.Count(out.String(), "done"); n != 3 {
		t.Fatalf("output:\n%s", out.String())
	}

	// As a crash after the run's end would leave it; from the checkpoint
	// before the newest (the store keeps three).
	at := epochs[len(epochs)-2]
	rec, err := readRecord(state)
	if err != nil {
		t.Fatal(err)
	}
	rec.Finished = false
	if err := writeRecord(state, rec); err != nil {
		t.Fatal(err)
	}
	log.Reset()
	code, err = Run(ctx, Config{StateDir: state, Resume: true, Epoch: at, Stdout: io.Discard, Log: &log, CacheDir: cache, Verbose: true})
	if err != nil || code != 0 {
		t.Fatalf("resume at %d: %d %v\n%s", at, code, err, log.String())
	}
	if want := fmt.Sprintf("resumed the job of 3 workers from epoch %d", at); !strings.Contains(log.String(), want) {
		t.Fatalf("resume at %d:\n%s", at, log.String())
	}
}
