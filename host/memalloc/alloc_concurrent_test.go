package memalloc

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"unsafe"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/experimental"
)

// recorder keeps the memories an Allocator hands out.
type recorder struct {
	Allocator
	mems []experimental.LinearMemory
}

func (r *recorder) Allocate(cap, max uint64) experimental.LinearMemory {
	m := r.Allocator.Allocate(cap, max)
	r.mems = append(r.mems, m)
	return m
}

// TestConcurrentReadWhileGrowing reads guest memory from another goroutine,
// through a slice taken once, while the guest grows its memory; then checks
// that closing the module unmaps the reservation.
func TestConcurrentReadWhileGrowing(t *testing.T) {
	rec := &recorder{}
	ctx := experimental.WithMemoryAllocator(context.Background(), rec)
	r := wazero.NewRuntime(ctx)
	mod, err := r.Instantiate(ctx, growModule(1, 0, false))
	if err != nil {
		t.Fatal(err)
	}
	first, _ := mod.Memory().Read(0, page)
	first[100] = 7
	var stop atomic.Bool
	var wg sync.WaitGroup
	wg.Add(1)
	var reads int
	go func() {
		defer wg.Done()
		for !stop.Load() {
			if first[100] != 7 {
				t.Error("read the wrong byte")
				return
			}
			reads++
		}
	}()
	grow := mod.ExportedFunction("grow")
	for i := 0; i < 300; i++ {
		if _, err := grow.Call(ctx, 1); err != nil {
			t.Fatal(err)
		}
	}
	stop.Store(true)
	wg.Wait()
	all, _ := mod.Memory().Read(0, mod.Memory().Size())
	if len(all) != 301*page || unsafe.SliceData(all) != unsafe.SliceData(first) {
		t.Fatalf("memory moved or wrong size %d", len(all))
	}
	if err := r.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if len(rec.mems) != 1 {
		t.Fatalf("%d memories allocated", len(rec.mems))
	}
	if m := rec.mems[0].(*mmapMemory); m.buf != nil {
		t.Error("closing the module did not free the reservation")
	}
}
