package host

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/tetratelabs/wazero/api"

	"github.com/librahost/librahost/host/wasmbin"
)

// The word counterWord finds is the one wazero's compiled code keeps the
// guest's preemption counter in, for Go and asyncify guests: what Set
// writes is read there, and what is stored there Get returns.
func TestPreemptCounterWord(t *testing.T) {
	ctx := context.Background()
	for _, src := range []string{"testdata/count", "testdata/count.c"} {
		t.Run(src, func(t *testing.T) {
			w, err := NewWorker(ctx, Config{Module: testGuest(t, src)})
			if err != nil {
				t.Fatal(err)
			}
			defer w.Close(ctx)
			g, _ := w.mod.ExportedGlobal(wasmbin.PreemptCounterName).(api.MutableGlobal)
			if g == nil || w.counterWord == nil {
				t.Fatalf("counter exported %v, found %v", g != nil, w.counterWord != nil)
			}
			if got, want := atomic.LoadUint32(w.counterWord), uint32(g.Get()); got != want || want == 0 {
				t.Fatalf("the word holds %d, the global %d", got, want)
			}
			g.Set(12345)
			if got := atomic.LoadUint32(w.counterWord); got != 12345 {
				t.Fatalf("the word holds %d after Set(12345)", got)
			}
			atomic.StoreUint32(w.counterWord, 0)
			if got := g.Get(); got != 0 {
				t.Fatalf("the global is %d after the word was zeroed", got)
			}
		})
	}
}
