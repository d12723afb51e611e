//go:build linux && !race

package dirty

import (
	"bufio"
	"bytes"
	"math/rand/v2"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
)

// withPool runs the test with a pool of blocks shadow blocks.
func withPool(t *testing.T, blocks uint64) {
	pb := poolBlocks
	poolBlocks = blocks
	t.Cleanup(func() { poolBlocks = pb })
}

// rssAnon returns the process's resident anonymous memory.
func rssAnon(t *testing.T) uint64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := bytes.CutPrefix(sc.Bytes(), []byte("RssAnon:")); ok {
			kb, err := strconv.ParseUint(string(bytes.TrimSuffix(bytes.TrimSpace(v), []byte(" kB"))), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return kb << 10
		}
	}
	t.Fatal("no RssAnon in /proc/self/status")
	return 0
}

// A capture of a memory much larger than the pool, while a writer
// rewrites all of it, holds at most the pool's blocks: the writer, which
// calls Throttle before each block as a guest does at its preemption
// calls, waits on the full pool until the reader, which takes the copied
// blocks first, has read them, and then goes on. The process's memory
// grows by no more than the pool while it runs.
func TestCOWPoolBound(t *testing.T) {
	const size = 128 << 20
	const chunk = 64 << 10
	const pool = 4
	withPool(t, pool)
	defer debug.SetGCPercent(debug.SetGCPercent(-1)) // the heap stays put: the growth is the pool's
	mem, tr := newTestWith(t, size, NewCOW)
	fill(mem, 0, size, 1)
	snap, err := tr.Freeze(size)
	if err != nil {
		t.Fatal(err)
	}
	base := rssAnon(t)

	wrote := make(chan struct{})
	go func() { // rewrites every block, in order
		for b := range size / CopyBlock {
			tr.Throttle()
			fill(mem, b*CopyBlock, (b+1)*CopyBlock, 2)
		}
		close(wrote)
	}()
	for tr.Pool().InUse < pool { // the writer has filled the pool
		runtime.Gosched()
	}
	select {
	case <-wrote:
		t.Fatal("the writer rewrote all of the memory with the pool full and nothing read")
	default:
	}

	snap.Need(chunk, nil)
	buf := make([]byte, chunk)
	var peak uint64
	for {
		lo, hi := snap.Next(chunk)
		if lo >= hi {
			break
		}
		for i := lo; i < hi; i++ {
			if at, ok := check(snap.Read(buf, i, chunk), i*chunk, 1); !ok {
				snap.Done()
				<-wrote
				t.Fatalf("snapshot differs at %#x", at)
			}
		}
		peak = max(peak, rssAnon(t))
	}
	snap.Done()
	<-wrote
	if at, ok := check(mem, 0, 2); !ok {
		t.Fatalf("memory after the rewrite differs at %#x", at)
	}
	st := tr.Pool()
	faults, copied := tr.Faults()
	t.Logf("pool %+v, %d faults, %d blocks copied of %d; resident memory grew by %d MiB at most",
		st, faults, copied, size/CopyBlock, (peak-base)>>20)
	if st.Peak > pool || st.Overflow != 0 {
		t.Fatalf("pool %+v: more than its %d blocks held", st, pool)
	}

	// The pool, and room for the test's own allocations.
	if limit := uint64(pool*CopyBlock + 16<<20); peak > base+limit {
		t.Fatalf("resident memory grew by %d MiB during the capture, more than %d MiB", (peak-base)>>20, limit>>20)
	}
	tr.Idle()
	if st := tr.Pool(); st.InUse != 0 {
		t.Fatalf("pool %+v once the snapshot is done with: blocks still held", st)
	}
}

// Writers that wait on a full pool make progress while the collector
// stops the world again and again: their faults (in memmove, where the
// runtime cannot preempt a goroutine, as it cannot in guest code) never
// wait for the reader, and they wait for room only in Throttle, between
// blocks, where the runtime stops and schedules them as it likes. The
// snapshot holds the freeze's bytes, the pool holds at most one block
// more per writer, and every block is given back.
func TestCOWPoolStopTheWorld(t *testing.T) {
	const size = 32 << 20
	const chunk = 64 << 10
	const pool = 2
	withPool(t, pool)
	mem, tr := newTestWith(t, size, NewCOW)
	src := make([]byte, size)
	for round := range uint64(3) {
		fill(mem, 0, size, round+1)
		fill(src, 0, size, round+2)
		snap, err := tr.Freeze(size)
		if err != nil {
			t.Fatal(err)
		}
		stop := make(chan struct{})
		var ws sync.WaitGroup
		var passes atomic.Int64
		for w := range 2 {
			ws.Add(1)
			go func() { // whole passes over the memory, each the other way
				defer ws.Done()
				for stopped := false; !stopped; {
					for i := range size / CopyBlock {
						b := i
						if w == 1 {
							b = size/CopyBlock - 1 - i
						}
						tr.Throttle()
						copy(mem[b*CopyBlock:(b+1)*CopyBlock], src[b*CopyBlock:])
					}
					passes.Add(1)
					select {
					case <-stop:
						stopped = true
					default:
					}
				}
			}()
		}
		collectUntil(stop, &ws)
		err = verify(snap, chunk, nil, func(int) uint64 { return round + 1 })
		close(stop)
		ws.Wait()
		if err != nil {
			t.Fatalf("round %d: snapshot %v", round, err)
		}
		t.Logf("round %d: %d passes written, pool %+v", round, passes.Load(), tr.Pool())
	}
	if st := tr.Pool(); st.Peak > pool+2 {
		t.Fatalf("pool %+v: more than its %d blocks and one per writer held", st, pool)
	}
	tr.Idle()
	if st := tr.Pool(); st.InUse != 0 {
		t.Fatalf("pool %+v once the snapshots are done with: blocks still held", st)
	}
}

// A writer that writes at random all over the memory and calls Throttle
// only when its word is zero, as a guest's loop head calls libra.preempt
// when its preemption counter is, holds no block beyond the pool: the
// handler zeroes the word (ZeroWhenFull) when its copy fills the pool,
// before the writer goes on from its fault, and the writer waits on the
// full pool until the reader starts. Without it the writer never waits,
// and every block it writes is copied, most beyond the pool.
func TestCOWPoolZeroWhenFull(t *testing.T) {
	const size = 64 << 20
	const chunk = 64 << 10
	const pool = 2
	const budget = 1 << 20
	withPool(t, pool)
	mem, tr := newTestWith(t, size, NewCOW)
	word := new(uint32)
	var pin runtime.Pinner
	pin.Pin(word)
	defer pin.Unpin()
	atomic.StoreUint32(word, budget)
	tr.ZeroWhenFull(word)
	defer tr.ZeroWhenFull(nil)
	fill(mem, 0, size, 1)
	snap, err := tr.Freeze(size)
	if err != nil {
		t.Fatal(err)
	}
	waiting := make(chan struct{}, 1)
	wrote := make(chan struct{})
	go func() { // enough random writes to touch every block
		defer close(wrote)
		r := rand.New(rand.NewPCG(1, 2))
		for range 64 * size / CopyBlock {
			if atomic.LoadUint32(word) == 0 { // the loop head's check
				select {
				case waiting <- struct{}{}:
				default:
				}
				tr.Throttle()
				atomic.StoreUint32(word, budget)
			}
			o := r.IntN(size/8) * 8
			fill(mem, o, o+8, 2)
		}
	}()
	select {
	case <-waiting:
	case <-wrote:
		t.Errorf("the writer wrote all over the memory without waiting: pool %+v", tr.Pool())
	}
	if st := tr.Pool(); st.Overflow != 0 || st.Peak > pool {
		t.Errorf("pool %+v before the reader started: blocks copied beyond its %d", st, pool)
	}
	err = verify(snap, chunk, nil, func(int) uint64 { return 1 })
	<-wrote
	if err != nil {
		t.Fatalf("snapshot %v", err)
	}
	tr.Idle()
	st := tr.Pool()
	_, copied := tr.Faults()
	t.Logf("%d blocks copied, pool %+v", copied, st)
	if st.Overflow != 0 || st.Peak > pool {
		t.Fatalf("pool %+v: blocks copied beyond its %d", st, pool)
	}
}
