package host

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/experimental"
	"github.com/tetratelabs/wazero/sys"

	"github.com/librahost/librahost/ckpt"
	"github.com/librahost/librahost/host/build"
	"github.com/librahost/librahost/host/dirty"
	"github.com/librahost/librahost/host/memalloc"
	"github.com/librahost/librahost/host/wasmbin"
	"github.com/librahost/librahost/transport"
	"github.com/librahost/librahost/wasi"
)

// Kind is how a guest is captured.
type Kind int

const (
	// KindPlain is a WASI module not built by librahost: it runs, but
	// cannot be checkpointed.
	KindPlain Kind = iota
	// KindGo is a Go reactor with the SDK's libra_run: native capture.
	KindGo
	// KindAsyncify went through Binaryen's asyncify pass.
	KindAsyncify
)

func (k Kind) String() string {
	return [...]string{"plain", "go", "asyncify"}[k]
}

// Config describes one Worker. Zero means default.
type Config struct {
	Module []byte   // the module as given (its digest binds checkpoints)
	Args   []string // argv, argv[0] included
	Env    []string // "K=V"
	Mounts []wasi.Mount
	Stdin  io.Reader
	Stdout *Output // nil: discard
	Stderr *Output
	Rank   int
	Size   int // default 1

	// Journal is the path of the guest's file undo journal (in the state
	// directory); "" means files are not rolled back.
	Journal string
	// Deterministic makes clocks and random numbers come from Seed, so a
	// run can be replayed exactly.
	Deterministic bool
	Seed          uint64

	// Run, if set, is stored in every checkpoint's host state: the run
	// the checkpoint belongs to (JSON).
	Run []byte

	// Endpoint carries the guest's messages; nil: a job of one that sends
	// none.
	Endpoint *transport.Endpoint

	// Cache is the wazero compilation cache shared by Workers; nil: none.
	Cache wazero.CompilationCache

	// PreemptBudget is the work between two libra.preempt calls of the
	// guest (wasmbin.InsertPreemption); 0 means
	// wasmbin.DefaultPreemptBudget. Negative leaves the code as it is, and
	// a computing guest then holds up the process's garbage collections:
	// for benchmarks only.
	PreemptBudget int32

	// OnPause is called on the guest's goroutine while it is paused for a
	// checkpoint. Capture's memory is valid only during the call.
	OnPause func(*Capture) error
	// OnCheckpointFailed is called when a requested checkpoint could not
	// be taken; the guest goes on.
	OnCheckpointFailed func(error)
}

// Capture is a paused guest's whole state.
type Capture struct {
	// Memory is the guest's memory. With copy-on-write (Dirty.Frozen
	// set) it is the running guest's: the snapshot is read through
	// Dirty.Frozen (hand both to ckpt.Store.Capture), or through Bytes
	// during the pause.
	Memory   []byte
	Globals  []uint64
	Asyncify []byte
	Host     []byte
	// Dirty says which memory was written since the worker's last
	// capture, for ckpt.Meta.Dirty; nil if that is not known.
	Dirty *ckpt.Dirty

	Requested time.Time // when the checkpoint was asked for
	Paused    time.Time // when the guest stopped for it
	// Taken is how long the worker took to take the capture (with
	// copy-on-write: to protect the memory), part of the pause.
	Taken time.Duration

	snap *dirty.Snapshot // see Bytes
}

// Worker is one guest in its own wazero runtime.
type Worker struct {
	cfg     Config
	kind    Kind
	info    build.Info
	digest  [32]byte
	globals []wasmbin.Global

	rt  wazero.Runtime
	mod api.Module
	// reserved is the guest memory's reservation, which the poker reads
	// while the guest runs; nil if the memory lives on the Go heap (a
	// failed reservation), and then a computing Go guest is not poked.
	reserved *memalloc.Reservation
	sys      *wasi.System
	clock    *guestClock

	// pending is set while a checkpoint is due; interrupt wakes a guest
	// sleeping in poll_oneoff.
	pending   atomic.Bool
	stopped   atomic.Bool  // Run's context is done: end the guest
	requested atomic.Int64 // unix ns of the pending request
	mu        sync.Mutex
	interrupt chan struct{}
	pokeWake  chan struct{}
	inboxWake chan struct{}
	event     *wasi.Event        // the guest's event fd: see libra.event_fd
	changes   atomic.Uint64      // arrivals in the inbox, for libra.pending
	held      *transport.Message // a message too large for the guest's buffer

	async    asyncState
	restored *State     // set by Restore, consumed by Run
	staged   bool       // Stage wrote an earlier state into memory
	lazy     *lazyState // a lazy restore's fill, until it is done with
	lazyWhy  error      // why the last Restore was not lazy
	dirty    dirtyTrack

	// preemptible: the module was given calls of libra.preempt
	// (wasmbin.InsertPreemption); preempts counts them.
	preemptible bool
	preempts    atomic.Int64
	// counterWord is the guest's preemption counter
	// (wasmbin.PreemptCounterName) where its compiled code keeps it: zero
	// there has the guest call libra.preempt at its next loop head. The
	// copy-on-write handler zeroes it when the pool fills
	// (dirty.Tracker.ZeroWhenFull). nil if not found (counterWord);
	// unpinCounter lets it go at Close.
	counterWord  *uint32
	unpinCounter func()
}

// Digest returns the SHA-256 of the module as given.
func (w *Worker) Digest() [32]byte { return w.digest }

// Preemptible reports whether the guest's code calls the host regularly
// even while it computes (see wasmbin.InsertPreemption).
func (w *Worker) Preemptible() bool { return w.preemptible }

// Kind returns how the guest is captured.
func (w *Worker) Kind() Kind { return w.kind }

// Info returns the build information the module carries.
func (w *Worker) Info() build.Info { return w.info }

// NewWorker validates and compiles the module. It does not run it.
func NewWorker(ctx context.Context, cfg Config) (*Worker, error) {
	if cfg.Size == 0 {
		cfg.Size = 1
	}
	w := &Worker{cfg: cfg, interrupt: make(chan struct{}, 1), pokeWake: make(chan struct{}, 1), inboxWake: make(chan struct{}, 1), event: wasi.NewEvent()}
	w.digest = sha256Sum(cfg.Module)
	if _, err := wasmbin.Parse(cfg.Module); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNotWasm, err)
	}
	info, ok, err := build.ReadInfo(cfg.Module)
	if err != nil {
		return nil, err
	}
	switch {
	case !ok:
		w.kind = KindPlain
	case info.Kind == "go":
		w.kind = KindGo
	case info.Kind == "asyncify":
		w.kind = KindAsyncify
	default:
		return nil, fmt.Errorf("host: module built for an unknown capture kind %q", info.Kind)
	}
	w.info = info
	code := cfg.Module
	if w.kind != KindPlain {
		code, w.globals, err = wasmbin.ExportMutableGlobals(cfg.Module)
		if err != nil {
			return nil, fmt.Errorf("host: %w", err)
		}
	}
	// The guest's loops call libra.preempt now and then: wazero's compiled
	// code cannot be preempted by Go, and a guest that never leaves it
	// would hold up every stop-the-world of the process (the collector's)
	// and, with GOMAXPROCS such guests, everything else. A module the
	// rewrite cannot read is compiled as it is: wazero then says what is
	// wrong with it, or it runs without those calls.
	if cfg.PreemptBudget >= 0 {
		if pre, err := wasmbin.InsertPreemption(code, cfg.PreemptBudget); err == nil {
			code, w.preemptible = pre, true
		}
	}
	// No WithCloseOnContextDone: its checks in every loop cost up to 2× in
	// guests' hot loops. Run stops a guest cooperatively instead (stop).
	rc := wazero.NewRuntimeConfig()
	if cfg.Cache != nil {
		rc = rc.WithCompilationCache(cfg.Cache)
	}
	w.rt = wazero.NewRuntimeWithConfig(ctx, rc)
	compiled, err := w.rt.CompileModule(ctx, code)
	if err != nil {
		w.rt.Close(ctx)
		return nil, fmt.Errorf("host: compile: %w", err)
	}
	if err := w.instantiateHost(ctx); err != nil {
		w.rt.Close(ctx)
		return nil, err
	}
	// One reservation for the whole memory: it never moves, so the poker
	// may read it while the guest runs, and growing it is free.
	mctx := experimental.WithMemoryAllocator(ctx, memalloc.Allocator{
		OnReserve: func(r *memalloc.Reservation) { w.reserved = r },
	})
	mc := wazero.NewModuleConfig().WithStartFunctions().WithName("")
	w.mod, err = w.rt.InstantiateModule(mctx, compiled, mc)
	if err != nil {
		w.rt.Close(ctx)
		return nil, fmt.Errorf("host: instantiate: %w", err)
	}
	if w.preemptible {
		g, _ := w.mod.ExportedGlobal(wasmbin.PreemptCounterName).(api.MutableGlobal)
		w.counterWord, w.unpinCounter = counterWord(w.mod, g)
	}
	w.openDirty()
	return w, nil
}

// instantiateHost instantiates WASI and the libra imports.
func (w *Worker) instantiateHost(ctx context.Context) error {
	w.clock = newGuestClock(0)
	var stdout, stderr io.Writer
	if w.cfg.Stdout != nil {
		stdout = w.cfg.Stdout
	}
	if w.cfg.Stderr != nil {
		stderr = w.cfg.Stderr
	}
	wc := wasi.Config{
		Args:      w.cfg.Args,
		Env:       w.cfg.Env,
		Stdin:     w.cfg.Stdin,
		Stdout:    stdout,
		Stderr:    stderr,
		Mounts:    w.cfg.Mounts,
		Nanotime:  func() int64 { return w.clock.Nanotime() },
		Interrupt: w.interrupt,
		Event:     w.event,
		Release:   w.releaseMem,

		Journal:       w.cfg.Journal,
		Deterministic: w.cfg.Deterministic,
		Seed:          w.cfg.Seed,
	}
	if w.kind == KindAsyncify {
		wc.Hooks = w
	}
	sys, err := wasi.New(wc)
	if err != nil {
		return fmt.Errorf("host: %w", err)
	}
	if err := sys.Instantiate(ctx, w.rt); err != nil {
		return fmt.Errorf("host: wasi: %w", err)
	}
	w.sys = sys
	return w.instantiateLibra(ctx)
}

// Close releases the runtime and the guest's memory.
func (w *Worker) Close(ctx context.Context) error {
	w.closeLazy()
	w.dirty.close() // the handler writes counterWord no more
	err := w.rt.Close(ctx)
	if w.unpinCounter != nil {
		w.unpinCounter()
	}
	if w.sys != nil {
		w.sys.Close()
	}
	return err
}

// RequestCheckpoint marks a checkpoint pending: the guest pauses at its
// next capture point and OnPause runs.
func (w *Worker) RequestCheckpoint() {
	if w.kind == KindPlain {
		return
	}
	if w.pending.CompareAndSwap(false, true) {
		w.requested.Store(time.Now().UnixNano())
		signal(w.interrupt)
		signal(w.pokeWake)
		w.event.Signal()
	}
}

// Pending reports whether a checkpoint is due.
func (w *Worker) Pending() bool { return w.pending.Load() }

// signal wakes whoever waits on c, without blocking.
func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

func sha256Sum(b []byte) [32]byte { return sha256.Sum256(b) }

// MemorySize is the guest's current linear memory size in bytes.
func (w *Worker) MemorySize() int {
	if m := w.mod.Memory(); m != nil {
		return int(m.Size())
	}
	return 0
}

// CheckpointFiles seals the file journal for checkpoint epoch and returns
// the checkpoint's file delta. Call it while the guest is paused (OnPause)
// or before it runs.
func (w *Worker) CheckpointFiles(epoch uint64) ([]byte, error) {
	return w.sys.CheckpointFiles(epoch)
}

// PendingFiles returns the file delta of the changes since the last
// CheckpointFiles, as that of epoch, without sealing the journal. Call it
// while the guest is paused.
func (w *Worker) PendingFiles(epoch uint64) ([]byte, error) {
	return w.sys.PendingFiles(epoch)
}

// RollbackFiles returns every file the guest touched to its state at
// checkpoint epoch (0: the start of the run). Call it before Restore.
func (w *Worker) RollbackFiles(epoch uint64) ([]string, error) {
	return w.sys.RollbackFiles(epoch)
}

// ReleaseFiles drops undo data that only checkpoints older than oldest
// could use. Call it while the guest is paused.
func (w *Worker) ReleaseFiles(oldest uint64) { w.sys.ReleaseFiles(oldest) }

// stop ends the guest at its next chance: a Go guest is preempted into the
// SDK's watcher, whose next libra.pending call exits; an asyncify guest
// exits at its next libra.* or WASI import; any guest exits at its next
// libra.preempt call.
func (w *Worker) stop() {
	if w.stopped.CompareAndSwap(false, true) {
		w.pending.Store(true)
		signal(w.interrupt)
		signal(w.pokeWake)
		signal(w.inboxWake)
		w.event.Signal()
	}
}

// checkStop exits the guest (from inside an import) once stop was called.
func (w *Worker) checkStop() {
	if w.stopped.Load() || w.lazyFailed() {
		panic(sys.NewExitError(sys.ExitCodeContextCanceled))
	}
}
