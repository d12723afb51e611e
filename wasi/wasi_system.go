package wasi

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/tetratelabs/wazero/api"
)

// Mount makes the host directory HostPath visible to the guest at GuestPath.
type Mount struct {
	HostPath, GuestPath string
	ReadOnly            bool
}

// Hooks lets the host capture a guest inside an import.
type Hooks interface {
	// Enter is called first in every import. If it returns true, the host
	// has started an asyncify unwind: the import must return at once, doing
	// nothing, with zero results; it will be called again with the same
	// arguments when the guest rewinds.
	Enter(ctx context.Context, mod api.Module) bool
}

// Config configures a System. The zero value of every field means its default.
type Config struct {
	Args []string
	Env  []string // "K=V"

	Stdin          io.Reader // nil: empty
	Stdout, Stderr io.Writer // nil: discard

	Mounts []Mount

	// Nanotime is the monotonic clock the guest sees; nil: time since New.
	Nanotime func() int64
	// Walltime is the real-time clock the guest sees; nil: time.Now.
	Walltime func() (sec int64, nsec int32)
	// Rand feeds random_get; nil: crypto/rand.
	Rand io.Reader
	// Hooks is called on every import; nil: none (Go-native guests).
	Hooks Hooks
	// Interrupt, when readable, ends a poll_oneoff sleep early. With Hooks
	// set, poll_oneoff then calls Hooks.Enter and, if the host unwinds,
	// remembers its deadline so the repeated call sleeps only what is left.
	Interrupt <-chan struct{}
	// Event is what the fd that OpenEvent gives the guest reads and
	// polls; nil: no event fd.
	Event *Event
	// Release, if set, is called with a view of guest memory before the
	// kernel writes into it (a read(2) or getrandom(2) straight into the
	// guest's buffer), so that the host can lift a write protection there
	// first (copy-on-write checkpoints, host/dirty).
	Release func(b []byte)

	// Journal is the path of this guest's undo journal for file rollback
	// (a directory Journal+".trash" beside it keeps removed files). With
	// it set, every change to mounted files is tracked for
	// CheckpointFiles and, after the first checkpoint, journaled so that
	// RollbackFiles can undo it. "" disables checkpoints of files.
	Journal string

	// Deterministic makes the clocks virtual and random_get a stream
	// seeded by Seed, so that a run can be replayed exactly (see
	// wasi_determinism.go); Nanotime, Walltime and Rand are then unused.
	Deterministic bool
	Seed          uint64
}

// mount is a validated Mount with its traversal-resistant root.
type mount struct {
	host     string
	guest    string // cleaned, absolute, slash-separated
	readOnly bool
	root     *os.Root
}

// System is the wasi_snapshot_preview1 state of one guest instance.
type System struct {
	args, env [][]byte

	stdin          *stdinReader
	stdout, stderr io.Writer

	mounts []*mount
	fds    *fdTable
	w      fsWriter
	j      *journal

	nanotime func() int64
	walltime func() (int64, int32)
	rand     io.Reader
	hooks    Hooks
	intr     <-chan struct{}
	event    *Event
	release  func([]byte)
	det      *determinism // nil unless Config.Deterministic

	// pendingStart is the guest-monotonic time at which a poll_oneoff
	// interrupted by an unwind began: the repeated call measures its
	// relative clocks from it, so each sleeps to its original deadline.
	// hasPending says it is set.
	pendingStart int64
	hasPending   bool

	instantiated bool
	closed       bool
}

// New validates cfg, opens its mounts and returns a System whose fd table
// holds stdio and one preopen per mount.
func New(cfg Config) (*System, error) {
	s := &System{
		stdout:   cfg.Stdout,
		stderr:   cfg.Stderr,
		nanotime: cfg.Nanotime,
		walltime: cfg.Walltime,
		rand:     cfg.Rand,
		hooks:    cfg.Hooks,
		intr:     cfg.Interrupt,
		event:    cfg.Event,
		release:  cfg.Release,
	}
	for _, a := range cfg.Args {
		if strings.IndexByte(a, 0) >= 0 {
			return nil, fmt.Errorf("%w: argument contains NUL", ErrConfig)
		}
		s.args = append(s.args, []byte(a))
	}
	for _, e := range cfg.Env {
		if strings.IndexByte(e, 0) >= 0 || !strings.Contains(e, "=") {
			return nil, fmt.Errorf("%w: environment entry %q is not K=V", ErrConfig, e)
		}
		s.env = append(s.env, []byte(e))
	}
	if s.stdout == nil {
		s.stdout = io.Discard
	}
	if s.stderr == nil {
		s.stderr = io.Discard
	}
	s.stdin = newStdinReader(cfg.Stdin)
	if s.nanotime == nil {
		start := time.Now()
		s.nanotime = func() int64 { return int64(time.Since(start)) }
	}
	if s.walltime == nil {
		s.walltime = func() (int64, int32) {
			t := time.Now()
			return t.Unix(), int32(t.Nanosecond())
		}
	}
	if s.rand == nil {
		s.rand = rand.Reader
	}
	if cfg.Deterministic {
		s.det = newDeterminism(cfg.Seed)
		s.nanotime, s.walltime, s.rand = s.det.nanotime, s.det.walltime, s.det
	}
	s.w = fsWriter{s: s}
	if cfg.Journal != "" {
		jp, err := filepath.Abs(cfg.Journal)
		if err != nil {
			return nil, fmt.Errorf("%w: journal: %v", ErrConfig, err)
		}
		cfg.Journal = jp
	}
	s.j = newJournal(s, cfg.Journal)
	for i, m := range cfg.Mounts {
		mt, err := openMount(m)
		if err != nil {
			s.closeMounts()
			return nil, fmt.Errorf("%w: mount %d: %v", ErrConfig, i, err)
		}
		s.mounts = append(s.mounts, mt)
	}
	s.fds = newFDTable(len(s.mounts))
	for _, e := range s.fds.m {
		if !e.preopen {
			continue
		}
		// A preopen is an open directory like any other (fd_readdir,
		// fd_filestat_get and fd_filestat_set_times use its file).
		f, err := s.mounts[e.mount].root.Open(".")
		if err != nil {
			s.Close()
			return nil, fmt.Errorf("%w: mount %d: %v", ErrConfig, e.mount, err)
		}
		e.file = f
	}
	return s, nil
}

func openMount(m Mount) (*mount, error) {
	if m.HostPath == "" {
		return nil, fmt.Errorf("empty host path")
	}
	g := m.GuestPath
	if g == "" {
		return nil, fmt.Errorf("empty guest path")
	}
	if strings.IndexByte(g, 0) >= 0 {
		return nil, fmt.Errorf("guest path contains NUL")
	}
	if !strings.HasPrefix(g, "/") {
		g = "/" + g
	}
	g = path.Clean(g)
	host, err := filepath.Abs(m.HostPath)
	if err != nil {
		return nil, err
	}
	root, err := os.OpenRoot(host)
	if err != nil {
		return nil, err
	}
	return &mount{host: host, guest: g, readOnly: m.ReadOnly, root: root}, nil
}

func (s *System) closeMounts() {
	for _, m := range s.mounts {
		m.root.Close()
	}
}

// Close releases every open file and mount. The System is unusable after.
func (s *System) Close() error {
	if s.closed {
		return nil
	}
	s.closed = true
	s.fds.closeAll()
	s.closeMounts()
	s.j.close()
	return nil
}
