package host

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/tetratelabs/wazero"

	"github.com/librahost/librahost/ckpt"
	"github.com/librahost/librahost/wasi"
)

// SessionConfig is one `librahost run`, `run --resume` or `restore`.
// Zero means default.
type SessionConfig struct {
	ModulePath string // the module; for a resume, "" means the copy in StateDir
	Args       []string
	Env        []string
	Mounts     []wasi.Mount

	// StateDir holds checkpoints, the run record and the output ledger;
	// "" runs without checkpoints.
	StateDir        string
	CheckpointEvery time.Duration
	Keep            int // checkpoints kept, default 3

	// Resume continues the run in StateDir from its newest good
	// checkpoint (or Epoch, if set).
	Resume bool
	Epoch  uint64

	// Deterministic makes clocks and random numbers come from Seed.
	Deterministic bool
	Seed          uint64

	Stdin          io.Reader
	Stdout, Stderr io.Writer // the real streams; files let a resume read what was emitted
	Log            io.Writer // librahost's own lines; default Stderr
	Verbose        bool      // a line per checkpoint

	CacheDir string // wazero compilation cache; "" none

	// Stop, when closed, takes a final checkpoint and ends the session
	// with ErrStopped.
	Stop <-chan struct{}
}

// Session is a running guest with its state directory.
type Session struct {
	cfg    SessionConfig
	rec    *runRecord
	store  *ckpt.Store
	ledger *Ledger
	lock   *os.File
	worker *Worker
	key    ckpt.Key
	bind   ckpt.Binding
	// journal is the file journal's state when resuming.
	journal *journalState

	mu       sync.Mutex
	epoch    uint64        // newest durable epoch
	next     uint64        // epoch of the next capture
	inflight *ckpt.Pending // the capture being written, if any
	waiters  []chan ckptResult
	stopping bool
	lastErr  error

	// capturing: onPause runs; a periodic checkpoint asked for now would
	// pause the guest again as soon as it goes on.
	capturing bool

	reporting sync.WaitGroup // progress reports of captures being written
}

type ckptResult struct {
	epoch uint64
	stats ckpt.Stats
	err   error
}

// Run runs a session to its end. It returns the guest's exit code, or an
// error: a trap, a refused checkpoint, a host failure, or ErrStopped.
func Run(ctx context.Context, cfg SessionConfig) (int, error) {
	if cfg.Log == nil {
		cfg.Log = cfg.Stderr
		if cfg.Log == nil {
			cfg.Log = io.Discard
		}
	}
	if cfg.StateDir != "" && cfg.Resume {
		if rec, err := readRecord(cfg.StateDir); err == nil && rec.N > 1 {
			return RunJob(ctx, jobFromSession(cfg)) // a job's run record says how many workers
		}
	}
	s := &Session{cfg: cfg, key: ckpt.Key{Job: "run", Worker: 0}}
	defer s.close()
	if err := s.open(ctx); err != nil {
		if errors.Is(err, errJobRecord) { // a job's rebuilt record
			if err := writeRecord(cfg.StateDir, s.rec); err != nil {
				return 1, err
			}
			s.close()
			*s = Session{}
			return RunJob(ctx, jobFromSession(cfg))
		}
		if errors.Is(err, errFinished) {
			fmt.Fprintf(cfg.Log, "librahost: the run in %s already finished with exit code %d\n", cfg.StateDir, s.rec.Exit)
			return s.rec.Exit, nil
		}
		return 1, err
	}
	return s.run(ctx)
}

func (s *Session) close() {
	if s.worker != nil {
		s.worker.Close(context.Background())
	}
	if s.store != nil {
		s.store.Close()
	}
	if s.ledger != nil {
		s.ledger.Close()
	}
	if s.lock != nil {
		s.lock.Close()
	}
}

// open prepares the state directory and the worker, restoring it when
// resuming.
func (s *Session) open(ctx context.Context) error {
	cfg := &s.cfg
	module, err := s.loadModule()
	if err != nil {
		return err
	}
	var stdout, stderr *Output
	var wcache wazero.CompilationCache
	if cfg.CacheDir != "" {
		if c, err := wazero.NewCompilationCacheWithDir(cfg.CacheDir); err == nil {
			wcache = c
		}
	}
	if cfg.StateDir != "" {
		s.ledger, err = OpenLedger(filepath.Join(cfg.StateDir, ledgerFile), !cfg.Resume, s.rec.RunID)
		if err != nil {
			return err
		}
		s.ledger.Bind(0, cfg.Stdout)
		s.ledger.Bind(1, cfg.Stderr)
		stdout = NewOutput(cfg.Stdout, s.ledger.Slot(0))
		stderr = NewOutput(cfg.Stderr, s.ledger.Slot(1))
	} else {
		stdout = NewOutput(cfg.Stdout, nil)
		stderr = NewOutput(cfg.Stderr, nil)
	}
	journal := ""
	if cfg.StateDir != "" {
		journal = filepath.Join(cfg.StateDir, journalFile)
		if !cfg.Resume { // a new run: the old run's undo data is void
			os.Remove(journal)
			os.RemoveAll(journal + ".trash")
		}
	}
	w, err := NewWorker(ctx, Config{
		Module:        module,
		Args:          s.rec.Args,
		Env:           s.rec.Env,
		Mounts:        mountsFromJSON(s.rec.Mounts),
		Journal:       journal,
		Deterministic: s.rec.Deterministic,
		Seed:          s.rec.Seed,
		Run:           s.runBinding(),
		Stdin:         cfg.Stdin,
		Stdout:        stdout,
		Stderr:        stderr,
		Cache:         wcache,
		OnPause: func(c *Capture) error {
			return s.onPause(c)
		},
		OnCheckpointFailed: s.onFailed,
	})
	if err != nil {
		return err
	}
	s.worker = w
	if cfg.StateDir == "" {
		if w.Kind() == KindPlain {
			fmt.Fprintf(cfg.Log, "librahost: warning: %s was not built by `librahost build`: it runs, but cannot be checkpointed\n", displayName(s.rec.Module))
		}
		return nil
	}
	if w.Kind() == KindPlain {
		return fmt.Errorf("%w (build it with `librahost build`)", ErrNotCheckpointable)
	}
	s.bind = ckpt.Binding{ModuleDigest: w.Digest(), Wazero: WazeroVersion(), Go: w.Info().Go}
	if s.store == nil {
		s.store, err = ckpt.Open(ckpt.Config{Path: filepath.Join(cfg.StateDir, storeFile), Keep: cfg.Keep})
		if err != nil {
			return err
		}
	}
	if cfg.Resume {
		if err := s.restore(); err != nil {
			return err
		}
		if s.ledger.Settle([2]int64{stdout.Position(), stderr.Position()}) {
			fmt.Fprintf(cfg.Log, "librahost: warning: %s\n", untrustedLedger(filepath.Join(cfg.StateDir, ledgerFile), s.ledger.Trust()))
		}
	} else {
		if err := s.store.Delete(s.key); err != nil && !errors.Is(err, ckpt.ErrNotFound) {
			return err
		}
		// Mark the start of the run in the file journal, so that a run
		// killed before its first checkpoint restarts on its files as
		// they were.
		if _, err := w.CheckpointFiles(0); err != nil {
			return err
		}
	}
	// Fault in the store's copy buffers now rather than during the first
	// (full) capture's pause.
	go s.store.Reserve(s.worker.MemorySize())
	s.next = s.epoch + 1
	if infos, err := s.store.Epochs(s.key); err == nil && len(infos) > 0 {
		s.next = max(s.next, infos[len(infos)-1].Epoch+1)
	}
	s.rec.Finished = false
	s.rec.Pid = os.Getpid()
	s.rec.Epoch = s.epoch
	return writeRecord(cfg.StateDir, s.rec)
}

// restore loads the newest good checkpoint, or the one asked for, into the
// worker. A run killed before its first checkpoint starts over; the
// ledger still keeps its output from being printed twice.
func (s *Session) restore() error {
	s.journal = readJournalState(filepath.Join(s.cfg.StateDir, journalFile), len(s.rec.Mounts))
	var m *ckpt.Manifest
	var err error
	if s.cfg.Epoch != 0 {
		m, err = s.usable(s.cfg.Epoch)
		if err == nil && !s.journal.serves(m.Epoch) {
			err = s.journal.refuse(m.Epoch)
		}
		if err != nil {
			return err
		}
	} else {
		var refused []error
		m, refused, err = s.store.Latest(s.key, s.bind)
		if err != nil {
			if errors.Is(err, ckpt.ErrNotFound) && len(refused) == 0 {
				if s.rec.Epoch > 0 {
					return fmt.Errorf("%w: state dir %s holds no checkpoint, though its run record names checkpoint %d (%s is empty or was replaced); restore it from a backup, or start the run over with another --state",
						ErrNoCheckpoint, s.cfg.StateDir, s.rec.Epoch, storeFile)
				}
				// Killed before its first checkpoint: start over, on the
				// files as they were at the start.
				return s.rollbackFiles(0)
			}
			if len(refused) > 0 {
				more := ""
				if len(refused) > 1 {
					more = fmt.Sprintf(" (and %d older ones refused)", len(refused)-1)
				}
				return fmt.Errorf("%w: %v%s", ErrNoCheckpoint, refused[0], more)
			}
			return err
		}
		if err := s.rec.checkRun(m.Epoch, hostRun(m.Host)); err != nil {
			return err
		}
		for _, r := range refused {
			fmt.Fprintf(s.cfg.Log, "librahost: warning: %v; trying an older checkpoint\n", r)
		}
		if !s.journal.serves(m.Epoch) {
			older := s.olderServed(m.Epoch)
			if older == nil {
				return s.journal.refuse(m.Epoch)
			}
			fmt.Fprintf(s.cfg.Log, "librahost: warning: %s, so the files cannot be returned to checkpoint %d; falling back to checkpoint %d\n",
				s.journal.problem(m.Epoch), m.Epoch, older.Epoch)
			m = older
		}
	}
	// A later checkpoint than the one restored belongs to an abandoned
	// timeline (or was refused): drop it, so that no later resume picks it.
	if err := s.store.DeleteAfter(s.key, m.Epoch); err != nil {
		return err
	}
	if err := s.rollbackFiles(m.Epoch); err != nil {
		return err
	}
	st := &State{
		MemSize:    m.MemSize,
		ReadMemory: func(dst []byte) error { return s.store.ReadMemory(m, dst) },
		Globals:    m.Globals,
		Host:       m.Host,
	}
	if err := s.worker.Restore(st); err != nil {
		return err
	}
	s.epoch = m.Epoch
	if s.cfg.Verbose {
		fmt.Fprintf(s.cfg.Log, "librahost: resumed from checkpoint %d (%s)\n", m.Epoch, FormatBytes(m.MemSize))
	}
	return nil
}

// usable reads and checks checkpoint epoch: the module build, the run,
// every chunk.
func (s *Session) usable(epoch uint64) (*ckpt.Manifest, error) {
	m, err := s.store.Manifest(s.key, epoch)
	if err == nil {
		err = s.checkBinding(m)
	}
	if err == nil {
		err = s.rec.checkRun(m.Epoch, hostRun(m.Host))
	}
	if err == nil {
		err = s.store.Verify(m)
	}
	return m, err
}

// olderServed returns the newest usable checkpoint before epoch that the
// file journal can return the files to, or nil.
func (s *Session) olderServed(epoch uint64) *ckpt.Manifest {
	infos, err := s.store.Epochs(s.key)
	if err != nil {
		return nil
	}
	for i := len(infos) - 1; i >= 0; i-- {
		e := infos[i].Epoch
		if e >= epoch || !s.journal.serves(e) {
			continue
		}
		if m, err := s.usable(e); err == nil {
			return m
		}
	}
	return nil
}

// rollbackFiles returns the files the guest touched to checkpoint epoch.
func (s *Session) rollbackFiles(epoch uint64) error {
	if s.journal == nil {
		s.journal = readJournalState(filepath.Join(s.cfg.StateDir, journalFile), len(s.rec.Mounts))
	}
	return s.journal.rollback(s.worker, epoch, s.cfg.Log, "")
}

// runBinding is the run binding for the worker's checkpoints; nil without
// a state directory.
func (s *Session) runBinding() []byte {
	if s.cfg.StateDir == "" {
		return nil
	}
	return s.rec.binding()
}

func (s *Session) checkBinding(m *ckpt.Manifest) error {
	if m.Binding != s.bind {
		return fmt.Errorf("%w: checkpoint %d was made by another build of the module", ckpt.ErrForeignModule, m.Epoch)
	}
	return nil
}

// loadModule reads the module and the run record: a new one for a run, the
// saved one for a resume (rebuilt from the checkpoints if it was lost).
func (s *Session) loadModule() ([]byte, error) {
	cfg := &s.cfg
	if cfg.StateDir != "" {
		if err := os.MkdirAll(cfg.StateDir, 0o755); err != nil {
			return nil, fmt.Errorf("host: state dir: %w", err)
		}
		lock, err := lockDir(cfg.StateDir)
		if err != nil {
			return nil, err
		}
		s.lock = lock
	}
	var old *runRecord
	if cfg.StateDir != "" {
		r, err := readRecord(cfg.StateDir)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, err
		}
		if r == nil {
			// A lost record must not lose the checkpoints with it.
			if r, err = s.rebuildRecord(); err != nil {
				return nil, err
			}
		}
		old = r
	}
	path := cfg.ModulePath
	if path == "" {
		if cfg.StateDir == "" || old == nil {
			return nil, fmt.Errorf("%w: state dir %s holds no run", ErrNoCheckpoint, cfg.StateDir)
		}
		path = filepath.Join(cfg.StateDir, moduleFile)
	}
	module, err := os.ReadFile(path)
	if err != nil {
		if cfg.ModulePath == "" {
			return nil, moduleCopyError(cfg.StateDir, old, "is missing")
		}
		return nil, fmt.Errorf("host: %w", err)
	}
	digest := digestHex(sha256Sum(module))
	if cfg.Resume && old == nil && cfg.ModulePath != "" {
		// Killed before the run was recorded: the guest never ran.
		fmt.Fprintf(cfg.Log, "librahost: nothing to resume in %s; starting the run\n", cfg.StateDir)
		cfg.Resume = false
	}
	if cfg.Resume && old != nil {
		if err := s.checkModuleCopy(old, digest, module); err != nil {
			return nil, err
		}
	}
	switch {
	case cfg.Resume && old == nil:
		return nil, fmt.Errorf("%w: state dir %s holds no run to resume", ErrNoCheckpoint, cfg.StateDir)
	case cfg.Resume && old.Digest != digest:
		return nil, fmt.Errorf("host: state dir %s holds a run of another module (%s); refusing to resume it with %s", cfg.StateDir, displayName(old.Module), path)
	case cfg.Resume && old.Finished:
		s.rec = old
		return module, errFinished
	case cfg.Resume:
		s.rec = old
		if old.RunID == "" { // a record made before runs were bound
			old.RunID = newRunID()
		}
		if old.N > 1 && s.key.Job != jobName {
			return module, errJobRecord
		}
		return module, nil
	case old != nil && !old.Finished:
		what := "an unfinished run of " + displayName(old.Module)
		if old.Digest != digest {
			what = "an unfinished run of another module (" + displayName(old.Module) + ")"
		}
		return nil, fmt.Errorf("%w: state dir %s holds %s, last checkpoint %d; use --resume to continue it, or another --state", ErrUnfinished, cfg.StateDir, what, old.Epoch)
	}
	s.rec = &runRecord{
		RunID: newRunID(),
		runSpec: runSpec{Module: path, Args: cfg.Args, Env: cfg.Env, Mounts: mountsToJSON(cfg.Mounts),
			Deterministic: cfg.Deterministic, Seed: cfg.Seed},
		Digest:  digest,
		Job:     s.key.Job,
		Started: time.Now().UTC(),
	}
	if cfg.StateDir != "" {
		if abs, err := filepath.Abs(path); err == nil {
			s.rec.Module = abs
		}
		if err := writeFileAtomic(filepath.Join(cfg.StateDir, moduleFile), module); err != nil {
			return nil, err
		}
	}
	return module, nil
}

func displayName(path string) string { return filepath.Base(path) }

func mountsToJSON(ms []wasi.Mount) []mountJSON {
	var out []mountJSON
	for _, m := range ms {
		if abs, err := filepath.Abs(m.HostPath); err == nil {
			m.HostPath = abs
		}
		out = append(out, mountJSON{Host: m.HostPath, Guest: m.GuestPath, ReadOnly: m.ReadOnly})
	}
	return out
}

func mountsFromJSON(ms []mountJSON) []wasi.Mount {
	var out []wasi.Mount
	for _, m := range ms {
		out = append(out, wasi.Mount{HostPath: m.Host, GuestPath: m.Guest, ReadOnly: m.ReadOnly})
	}
	return out
}

// FormatBytes prints n in binary units.
func FormatBytes(n uint64) string {
	var b bytes.Buffer
	switch {
	case n >= 1<<30:
		fmt.Fprintf(&b, "%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		fmt.Fprintf(&b, "%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		fmt.Fprintf(&b, "%.1f KiB", float64(n)/(1<<10))
	default:
		fmt.Fprintf(&b, "%d B", n)
	}
	return b.String()
}
