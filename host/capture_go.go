package host

import (
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/tetratelabs/wazero/api"

	"github.com/librahost/librahost/host/wasmbin"
)

// Go's wasm port keeps these in mutable globals 0 and 2; the offsets are
// those of runtime.g and runtime.m in Go 1.26 (TestGoRuntimeLayout checks
// them against the toolchain at hand; librahost build refuses a Go release
// not in build.VerifiedGo).
const (
	goGlobalSP      = 0
	goGlobalG       = 2
	gStackLo        = 0
	gStackHi        = 8
	gStackguard0    = 16
	gM              = 48
	gPreempt        = 177
	gSize           = 184
	mG0             = 0
	mCurg           = 136
	mSize           = 144
	goStackPreempt  = 0xfffffffffffffade
	pokeEvery       = 50 * time.Microsecond
	pokeMaxAttempts = 1 << 20
)

// poker forces Go's cooperative preemption while a checkpoint is pending:
// it writes stackPreempt into the running goroutine's stackguard0, so the
// next function prologue enters the scheduler, where the SDK's watcher
// gets to run and returns from libra_run. A guest that calls no function
// at all is not preemptible until it does, as in Go before 1.14.
type poker struct {
	w       *Worker
	sp, g   api.Global
	running atomic.Bool
	done    chan struct{}
	mu      sync.Mutex // held during a poke; taken to wait one out
	stopped sync.WaitGroup
	pokes   atomic.Int64
}

func newPoker(w *Worker) *poker {
	p := &poker{w: w, done: make(chan struct{})}
	p.sp = w.mod.ExportedGlobal(wasmbin.GlobalExportName(goGlobalSP))
	p.g = w.mod.ExportedGlobal(wasmbin.GlobalExportName(goGlobalG))
	p.stopped.Add(1)
	go p.loop()
	return p
}

// resume marks the guest running; pause marks it stopped and waits for a
// poke under way, so memory is quiet when the caller reads it.
func (p *poker) resume() {
	p.running.Store(true)
	if p.w.pending.Load() {
		signal(p.w.pokeWake)
	}
}

func (p *poker) pause() {
	p.running.Store(false)
	p.mu.Lock()
	//lint:ignore SA2001 an empty critical section waits for a poke in flight
	p.mu.Unlock()
}

func (p *poker) close() {
	close(p.done)
	p.stopped.Wait()
}

func (p *poker) loop() {
	defer p.stopped.Done()
	t := time.NewTicker(pokeEvery)
	defer t.Stop()
	for {
		select {
		case <-p.done:
			return
		case <-p.w.pokeWake:
		}
		for i := 0; i < pokeMaxAttempts && p.w.pending.Load() && p.running.Load(); i++ {
			p.mu.Lock()
			if p.running.Load() {
				p.poke()
			}
			p.mu.Unlock()
			// Go's timers sleep at least a millisecond; a nanosleep
			// on this thread keeps the pokes tens of microseconds apart.
			threadSleep(pokeEvery)
		}
	}
}

// poke asks the goroutine that runs now to stop, as Go's own sysmon does
// on other platforms (preemptone): it sets curg.preempt and writes
// stackPreempt into curg.stackguard0. curg is the running goroutine of the
// current M, even while it runs on the scheduler's stack (g0), for example
// in the garbage collector's mark worker, which checks curg.preempt.
func (p *poker) poke() {
	if p.sp == nil || p.g == nil {
		return
	}
	// Only a memory that never moves may be read while the guest runs;
	// its size is read without touching wazero's memory instance.
	if p.w.reserved == nil {
		return
	}
	buf := p.w.reserved.Bytes()
	size := uint64(len(buf))
	valid := func(a uint64) bool { return a != 0 && a%8 == 0 && a+gSize <= size }
	g := p.g.Get()
	sp := p.sp.Get() & 0xffffffff
	if g2 := p.g.Get(); g2 != g || !valid(g) {
		return
	}
	m := load64(buf, g+gM)
	if !valid(m) || m+mSize > size {
		return
	}
	curg := load64(buf, m+mCurg)
	g0 := load64(buf, m+mG0)
	if !valid(curg) || curg == g0 || load64(buf, curg+gM) != m {
		return // never the scheduler's g0: poking it aborts the runtime
	}
	lo, hi := load64(buf, curg+gStackLo), load64(buf, curg+gStackHi)
	if lo >= hi || hi > size {
		return
	}
	if g == curg && !(lo < sp && sp <= hi) {
		return
	}
	*(*uint8)(unsafe.Pointer(&buf[curg+gPreempt])) = 1
	atomic.StoreUint64((*uint64)(unsafe.Pointer(&buf[curg+gStackguard0])), goStackPreempt)
	p.pokes.Add(1)
}

func load64(buf []byte, off uint64) uint64 {
	return atomic.LoadUint64((*uint64)(unsafe.Pointer(&buf[off])))
}
