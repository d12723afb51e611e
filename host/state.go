package host

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// hostStateVersion is the version of the encoding of hostState.
const hostStateVersion = 1

// hostState is what a checkpoint holds of the host's side of a guest:
// small, so it is plain JSON, readable in `ckpt inspect`.
type hostState struct {
	Version   int    `json:"version"`
	Kind      string `json:"kind"`
	Clock     int64  `json:"clock_ns"`   // the guest's monotonic time
	Stdout    int64  `json:"stdout_pos"` // the guest's position in stdout
	Stderr    int64  `json:"stderr_pos"`
	AsyncBuf  uint32 `json:"async_buf,omitempty"`
	AsyncPage uint32 `json:"async_pages,omitempty"`
	WASI      []byte `json:"wasi"`
	// Run is the run the checkpoint belongs to (runBinding); absent in
	// checkpoints made before runs were bound.
	Run json.RawMessage `json:"run,omitempty"`
}

// State is a checkpoint to restore from, as the store hands it out.
type State struct {
	MemSize uint64
	// ReadMemory fills dst (zeroed, MemSize bytes) with the saved memory.
	ReadMemory func(dst []byte) error
	Globals    []uint64
	Host       []byte
	// Lazy, if set, lets Restore start the guest before its memory is
	// read (worker_lazy.go); ReadMemory is used where it cannot.
	Lazy *LazyMemory
	// InPlace says that the memory already holds an earlier state (Stage):
	// it is not zeroed first, and ReadMemory writes only what differs.
	InPlace bool
}

// capture hands the paused guest's state to OnPause.
func (w *Worker) capture() error {
	paused := time.Now()
	requested := time.Unix(0, w.requested.Load())
	w.pending.Store(false)
	select { // a wake-up meant for this checkpoint is spent
	case <-w.interrupt:
	default:
	}
	if w.cfg.OnPause == nil {
		return nil
	}
	// A lazy restore's fill first: nothing is captured that is not in.
	if err := w.lazyCapture(); err != nil {
		return err
	}
	defer w.thaw()
	c, err := w.snapshot()
	if err != nil {
		w.failCheckpoint(err)
		return nil
	}
	// Taken leaves out the wait for the capture before, as the drivers'
	// own waits for the write before are left out.
	c.Requested, c.Paused, c.Taken = requested, paused, time.Since(paused)-w.dirty.waited
	if err := w.cfg.OnPause(c); err != nil {
		if errors.Is(err, ErrStopped) || errors.Is(err, ErrMoved) {
			return err
		}
		w.failCheckpoint(err)
	}
	return nil
}

func (w *Worker) failCheckpoint(err error) {
	if w.cfg.OnCheckpointFailed != nil {
		w.cfg.OnCheckpointFailed(err)
	}
}

func (w *Worker) snapshot() (*Capture, error) {
	mem := w.mod.Memory()
	var data []byte
	if mem != nil {
		data, _ = mem.Read(0, mem.Size())
	}
	globals := make([]uint64, len(w.globals))
	for i, g := range w.globals {
		eg := w.mod.ExportedGlobal(g.Name)
		if eg == nil {
			return nil, fmt.Errorf("host: global %d is not exported", g.Index)
		}
		globals[i] = eg.Get()
	}
	ws, err := w.sys.Snapshot()
	if err != nil {
		return nil, fmt.Errorf("host: wasi state: %w", err)
	}
	hs := hostState{
		Version:   hostStateVersion,
		Kind:      w.kind.String(),
		Clock:     w.clock.Nanotime(),
		AsyncBuf:  w.async.buf,
		AsyncPage: w.async.bufPages,
		WASI:      ws,
		Run:       w.cfg.Run,
	}
	if w.cfg.Stdout != nil {
		hs.Stdout = w.cfg.Stdout.Position()
	}
	if w.cfg.Stderr != nil {
		hs.Stderr = w.cfg.Stderr.Position()
	}
	host, err := json.Marshal(&hs)
	if err != nil {
		return nil, err
	}
	data, hint := w.freeze(data)
	return &Capture{Memory: data, Globals: globals, Host: host, Dirty: hint, snap: w.dirty.snap}, nil
}

// Restore loads st into the guest before Run: memory, every mutable
// global, the WASI state, the clock and the output positions. Run then
// resumes the guest where the checkpoint left it.
func (w *Worker) Restore(st *State) (err error) {
	lazyTaken := false // by restoreLazy, which ends what it does not use
	defer func() {
		if st.Lazy != nil && !lazyTaken {
			st.Lazy.abandon()
		}
	}()
	if w.kind == KindPlain {
		return ErrNotCheckpointable
	}
	var hs hostState
	if err := json.Unmarshal(st.Host, &hs); err != nil {
		return fmt.Errorf("host: checkpoint host state: %w", err)
	}
	if hs.Version != hostStateVersion {
		return fmt.Errorf("host: checkpoint host state version %d, want %d", hs.Version, hostStateVersion)
	}
	if hs.Kind != w.kind.String() {
		return fmt.Errorf("host: checkpoint of a %s guest, module is %s", hs.Kind, w.kind)
	}
	if len(st.Globals) != len(w.globals) {
		return fmt.Errorf("host: checkpoint has %d globals, module has %d", len(st.Globals), len(w.globals))
	}
	mem := w.mod.Memory()
	if mem == nil {
		return errors.New("host: guest has no memory")
	}
	if st.MemSize%65536 != 0 || st.MemSize < uint64(mem.Size()) {
		return fmt.Errorf("host: checkpoint memory size %d does not fit the module", st.MemSize)
	}
	start := time.Now()
	initial := mem.Size()
	if delta := uint32((st.MemSize - uint64(mem.Size())) / 65536); delta > 0 {
		if _, ok := mem.Grow(delta); !ok {
			return fmt.Errorf("host: cannot grow guest memory to %d bytes", st.MemSize)
		}
	}
	buf, _ := mem.Read(0, mem.Size())
	w.lazyWhy = errors.New("not asked for")
	if st.InPlace {
		if !w.staged {
			return errors.New("host: no memory was staged to restore in place")
		}
		if err := st.ReadMemory(buf); err != nil {
			return err
		}
	} else if st.Lazy != nil {
		lazyTaken = true
		w.lazyWhy = w.restoreLazy(buf, st.Lazy, start)
	}
	if w.lazy == nil && !st.InPlace {
		// Zero what the fresh instance's data segments wrote; pages
		// added by Grow are zero already, and so are the saved zero
		// chunks.
		clear(buf[:initial])
		if err := st.ReadMemory(buf); err != nil {
			return err
		}
	}
	for i, g := range w.globals {
		mg, ok := w.mod.ExportedGlobal(g.Name).(interface{ Set(uint64) })
		if !ok {
			return fmt.Errorf("host: global %d is not mutable", g.Index)
		}
		mg.Set(st.Globals[i])
	}
	if err := w.sys.Restore(hs.WASI); err != nil {
		return fmt.Errorf("host: wasi state: %w", err)
	}
	w.clock = newGuestClock(hs.Clock)
	if w.cfg.Stdout != nil {
		w.cfg.Stdout.SetPosition(hs.Stdout)
	}
	if w.cfg.Stderr != nil {
		w.cfg.Stderr.SetPosition(hs.Stderr)
	}
	w.async = asyncState{buf: hs.AsyncBuf, bufPages: hs.AsyncPage}
	w.restored = st
	return nil
}
