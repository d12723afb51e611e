package host

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"sync"

	"github.com/librahost/librahost/ckpt"
	"github.com/librahost/librahost/host/build"
	"github.com/librahost/librahost/transport"
)

// jobName is the Job of every checkpoint key of a job's ranks; rank r's
// checkpoints are Key{jobName, r}.
const jobName = "job"

// jobRun is a job of several workers on this host with checkpoints: its
// state directory (the run record, the module, one store for every rank,
// the output ledger, a file journal per rank) and the driver of its
// coordinated checkpoints (job_rounds.go).
type jobRun struct {
	cfg    JobConfig
	n      int
	module []byte
	rec    *runRecord
	lock   *os.File
	store  *ckpt.Store
	ledger *jobLedger
	bind   ckpt.Binding
	runTag json.RawMessage // the run binding of every checkpoint
	ep     *transport.Endpoint
	outs   [][2]*rankOut

	// What a resume restores: the epoch (0: the start) and, by rank, its
	// manifest and job state.
	fresh bool // a new run, not a resume
	from  uint64
	// journals are the ranks' file journals when resuming.
	journals []*journalState
	mans     []*ckpt.Manifest
	states   []*rankCheckpoint
	comm     []transport.RankState

	mu       sync.Mutex
	cond     sync.Cond
	coord    *ckpt.Coordinator
	workers  []*Worker // by rank; nil for a rank not run here
	ended    []bool
	codes    []int
	round    roundState
	stopping bool   // a stop was asked for
	stopAt   uint64 // the epoch whose commit ends the job, 0 if none yet
	aborted  bool   // the job is failing: no more checkpoints
	live     int    // ranks run here
	prepared int    // of which prepared
	ready    bool   // every rank run here is prepared: checkpoints may begin
	waiters  []chan ckptResult
}

// runCheckpointedJob runs (or resumes) a job with a state directory.
func runCheckpointedJob(ctx context.Context, cfg JobConfig) (int, error) {
	j := &jobRun{cfg: cfg}
	j.cond.L = &j.mu
	defer j.close()
	if err := j.open(); err != nil {
		if errors.Is(err, errFinished) {
			fmt.Fprintf(cfg.Log, "librahost: the job in %s already finished with exit code %d\n", cfg.StateDir, j.rec.Exit)
			return j.rec.Exit, nil
		}
		return 1, err
	}
	return j.run(ctx)
}

func (j *jobRun) close() {
	if j.ep != nil {
		j.ep.Close()
	}
	if j.store != nil {
		j.store.Close()
	}
	if j.ledger != nil {
		j.ledger.Close()
	}
	if j.lock != nil {
		j.lock.Close()
	}
}

func (j *jobRun) key(rank int) ckpt.Key { return ckpt.Key{Job: jobName, Worker: uint32(rank)} }

func (j *jobRun) journal(rank int) string {
	return filepath.Join(j.cfg.StateDir, journalFile+"."+strconv.Itoa(rank))
}

// open prepares the state directory: the run record (new, or the one
// resumed), the store, the ledger, and what a resume restores.
func (j *jobRun) open() error {
	cfg := &j.cfg
	// The run record and the module are handled as for a single run.
	s := &Session{cfg: SessionConfig{
		ModulePath: cfg.ModulePath, Args: cfg.Args, Env: cfg.Env, Mounts: cfg.Mounts,
		StateDir: cfg.StateDir, Resume: cfg.Resume, Log: cfg.Log,
		Deterministic: cfg.Deterministic, Seed: cfg.Seed,
	}, key: ckpt.Key{Job: jobName}}
	module, err := s.loadModule()
	j.lock, j.rec, j.module, j.store = s.lock, s.rec, module, s.store
	if err != nil {
		return err
	}
	resume := s.cfg.Resume // false when there was nothing to resume
	j.fresh = !resume
	if resume {
		if j.rec.N < 2 {
			return fmt.Errorf("host: state dir %s holds a run of one worker: resume it without -n", cfg.StateDir)
		}
		if cfg.N > 1 && cfg.N != j.rec.N {
			return fmt.Errorf("host: state dir %s holds a job of %d workers, not %d", cfg.StateDir, j.rec.N, cfg.N)
		}
	} else {
		if cfg.N < 2 {
			return errors.New("host: a job needs at least two workers")
		}
		j.rec.N, j.rec.Prefix = cfg.N, cfg.Prefix
		if cfg.CheckpointEvery > 0 {
			j.rec.Extra = &recordExtra{CheckpointEvery: cfg.CheckpointEvery.String()}
		}
	}
	j.n = j.rec.N
	j.runTag = j.rec.binding()
	info, ok, err := build.ReadInfo(module)
	if err != nil {
		return err
	}
	if !ok || (info.Kind != "go" && info.Kind != "asyncify") {
		return fmt.Errorf("%w (build it with `librahost build`)", ErrNotCheckpointable)
	}
	j.bind = ckpt.Binding{ModuleDigest: sha256Sum(module), Wazero: WazeroVersion(), Go: info.Go}
	if j.store == nil {
		j.store, err = ckpt.Open(ckpt.Config{Path: filepath.Join(cfg.StateDir, storeFile), Keep: cfg.Keep})
		if err != nil {
			return err
		}
	}
	j.ledger, err = openJobLedger(filepath.Join(cfg.StateDir, ledgerFile), j.n, !resume, j.rec.RunID)
	if err != nil {
		return err
	}
	j.ledger.bind(0, cfg.Stdout, cfg.Stderr)
	j.ledger.bind(1, cfg.Stderr, cfg.Stdout)
	j.mans = make([]*ckpt.Manifest, j.n)
	j.states = make([]*rankCheckpoint, j.n)
	if resume {
		if err := j.chooseEpoch(); err != nil {
			return err
		}
	} else if err := j.clearStore(); err != nil {
		return err
	}
	next := j.from + 1
	j.coord = ckpt.NewCoordinator(j.n, j.from, next)
	j.workers = make([]*Worker, j.n)
	j.ended = make([]bool, j.n)
	j.codes = make([]int, j.n)
	for r, st := range j.states {
		if st != nil && st.Ended {
			j.ended[r], j.codes[r] = true, st.Exit
			j.coord.Ended(r)
		}
	}
	j.rec.Finished = false
	j.rec.Pid = os.Getpid()
	j.rec.Epoch = j.from
	return writeRecord(cfg.StateDir, j.rec)
}

// clearStore drops what an earlier run left in the state directory.
func (j *jobRun) clearStore() error {
	keys, err := j.store.Keys()
	if err != nil {
		return err
	}
	for _, k := range keys {
		if err := j.store.Delete(k); err != nil && !errors.Is(err, ckpt.ErrNotFound) {
			return err
		}
	}
	if err := j.store.DeleteCommitsAfter(jobName, 0); err != nil {
		return err
	}
	for r := range j.n {
		os.Remove(j.journal(r))
		os.RemoveAll(j.journal(r) + ".trash")
	}
	return nil
}

// chooseEpoch picks the job epoch to restore: the one asked for, or the
// newest committed one whose every rank's checkpoint verifies. A job
// killed before its first commit starts over (files rolled back, output
// not printed twice).
func (j *jobRun) chooseEpoch() error {
	commits, err := j.store.Commits(jobName)
	if err != nil {
		return err
	}
	j.journals = make([]*journalState, j.n)
	for r := range j.n {
		j.journals[r] = readJournalState(j.journal(r), len(j.rec.Mounts))
	}
	var refused []error
	found := false
	for i := len(commits) - 1; i >= 0 && !found; i-- {
		c := commits[i]
		if j.cfg.Epoch != 0 && c.Epoch != j.cfg.Epoch {
			continue
		}
		err := j.loadEpoch(c)
		if err == nil {
			err = j.journalsServe(c.Epoch)
		}
		if err == nil {
			found = true
			break
		}
		if j.cfg.Epoch != 0 || errors.Is(err, ErrForeignRun) {
			return err
		}
		refused = append(refused, err)
		fmt.Fprintf(j.cfg.Log, "librahost: warning: %v; the whole job falls back to an older epoch\n", err)
	}
	switch {
	case found:
	case j.cfg.Epoch != 0:
		return fmt.Errorf("%w: epoch %d of the job in %s was not committed", ErrNoCheckpoint, j.cfg.Epoch, j.cfg.StateDir)
	case len(refused) > 0:
		return fmt.Errorf("%w: %v", ErrNoCheckpoint, refused[len(refused)-1])
	case j.rec.Epoch > 0:
		return fmt.Errorf("%w: state dir %s holds no committed epoch, though its run record names epoch %d (%s is empty or was replaced); restore it from a backup, or start the job over with another --state",
			ErrNoCheckpoint, j.cfg.StateDir, j.rec.Epoch, storeFile)
	default:
		j.from = 0
		clear(j.mans)
		clear(j.states)
	}
	// Later epochs belong to an abandoned timeline (or were refused):
	// drop them, so that no later resume picks them.
	for r := range j.n {
		if err := j.store.DeleteAfter(j.key(r), j.from); err != nil {
			return err
		}
	}
	if err := j.store.DeleteCommitsAfter(jobName, j.from); err != nil {
		return err
	}
	if j.from != 0 && j.cfg.Verbose {
		var mem uint64
		for _, m := range j.mans {
			mem += m.MemSize
		}
		fmt.Fprintf(j.cfg.Log, "librahost: resumed the job of %d workers from epoch %d (%s)\n", j.n, j.from, FormatBytes(mem))
	}
	return nil
}

// journalsServe refuses epoch if a rank's file journal cannot return its
// files to it.
func (j *jobRun) journalsServe(epoch uint64) error {
	for r, js := range j.journals {
		if !js.serves(epoch) {
			return fmt.Errorf("%w: rank %d: %s, so its files cannot be returned to epoch %d", ErrDamagedState, r, js.problem(epoch), epoch)
		}
	}
	return nil
}

// loadEpoch reads and verifies every rank's checkpoint of a committed
// epoch.
func (j *jobRun) loadEpoch(c ckpt.Commit) error {
	if int(c.Workers) != j.n {
		return fmt.Errorf("%w: epoch %d was committed for %d workers, the job has %d", ErrNoCheckpoint, c.Epoch, c.Workers, j.n)
	}
	mans := make([]*ckpt.Manifest, j.n)
	states := make([]*rankCheckpoint, j.n)
	comm := make([]transport.RankState, j.n)
	for r := range j.n {
		m, err := j.store.Manifest(j.key(r), c.Epoch)
		if err == nil && m.Binding != j.bind {
			err = fmt.Errorf("%w: checkpoint %d of rank %d was made by another build of the module", ckpt.ErrForeignModule, c.Epoch, r)
		}
		if err == nil {
			err = j.store.Verify(m)
		}
		if err != nil {
			return err
		}
		rc, cs, err := decodeRankCheckpoint(m.Host)
		if err == nil && cs.Rank != uint32(r) {
			err = fmt.Errorf("host: checkpoint %d of rank %d holds the channels of rank %d", c.Epoch, r, cs.Rank)
		}
		if err != nil {
			return fmt.Errorf("epoch %d, rank %d: %w", c.Epoch, r, err)
		}
		if err := j.rec.checkRun(c.Epoch, rc.Run); err != nil {
			return err
		}
		mans[r], states[r], comm[r] = m, rc, *cs
	}
	j.from, j.mans, j.states, j.comm = c.Epoch, mans, states, comm
	return nil
}

// run runs the ranks that had not ended, with the checkpoint triggers.
func (j *jobRun) run(ctx context.Context) (int, error) {
	cfg := &j.cfg
	ep, err := transport.NewEndpoint(transport.EndpointConfig{
		Host:  "local",
		Route: func(uint32) transport.HostID { return "local" },
		// Sender logs past their limit: a checkpoint makes them stable.
		OnLogFull: func(int64) { go j.startRound() },
		Logf:      func(format string, args ...any) { fmt.Fprintf(cfg.Log, "librahost: "+format+"\n", args...) },
	})
	if err != nil {
		return 1, err
	}
	j.ep = ep
	if j.comm != nil {
		if err := ep.Restore(j.comm); err != nil {
			return 1, err
		}
	}
	if t := j.ledger.trust; t != "" {
		fmt.Fprintf(cfg.Log, "librahost: warning: %s\n", untrustedLedger(filepath.Join(cfg.StateDir, ledgerFile), t))
	}
	streams := [2]*jobStream{j.ledger.newStream(0, cfg.Stdout), j.ledger.newStream(1, cfg.Stderr)}
	j.outs = make([][2]*rankOut, j.n)
	var live []int
	for r := range j.n {
		for s := range 2 {
			if streams[s].w != nil {
				j.outs[r][s] = newRankOut(streams[s], j.ledger, r, s, j.rec.Prefix)
			}
		}
		if !j.ended[r] {
			live = append(live, r)
		}
	}
	if len(live) == 0 { // every program had ended at the epoch restored
		return j.finish(0)
	}
	j.live = len(live)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan struct{})
	defer close(done)
	go func() { // a failing or cancelled job takes no more checkpoints
		select {
		case <-ctx.Done():
			j.abort()
		case <-done:
		}
	}()
	if stopCtl, err := serveControl(cfg.StateDir, j.requestCheckpoint); err != nil {
		fmt.Fprintf(cfg.Log, "librahost: warning: %v\n", err)
	} else {
		defer stopCtl()
	}
	go j.triggers(done)
	if cfg.Stop != nil {
		go func() {
			select {
			case <-done:
			case <-cfg.Stop:
				j.stop()
			}
		}()
	}
	res, err := RunRanks(ctx, RanksConfig{
		Module:             j.module,
		ModuleName:         displayName(j.rec.Module),
		Ranks:              live,
		Size:               j.n,
		Args:               j.rec.Args,
		Env:                j.rec.Env,
		Mounts:             mountsFromJSON(j.rec.Mounts),
		Stdin:              cfg.Stdin,
		Stdout:             j.output(0),
		Stderr:             j.output(1),
		Endpoint:           ep,
		CacheDir:           cfg.CacheDir,
		Log:                cfg.Log,
		Journal:            j.journal,
		Deterministic:      j.rec.Deterministic,
		Seed:               j.rec.Seed,
		Prepare:            j.prepare,
		OnPause:            j.onPause,
		OnCheckpointFailed: j.onFailed,
		OnExit:             j.onExit,
	})
	if err != nil {
		return 1, err
	}
	j.waitRound()
	code, err := res.Outcome()
	if errors.Is(err, ErrStopped) {
		return 1, err
	}
	if err != nil {
		return code, err
	}
	return j.finish(code)
}

func (j *jobRun) output(s int) func(int) io.Writer {
	return func(r int) io.Writer {
		if o := j.outs[r][s]; o != nil {
			return o
		}
		return nil
	}
}

// finish records that the job ended with code.
func (j *jobRun) finish(code int) (int, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.rec.Finished, j.rec.Exit = true, code
	if err := writeRecord(j.cfg.StateDir, j.rec); err != nil {
		// The job's exit code stands.
		fmt.Fprintf(j.cfg.Log, "librahost: warning: the job ended but %s does not say so: %v\n", j.cfg.StateDir, err)
	}
	return code, nil
}

// prepare readies rank's worker before any runs: its files rolled back to
// the epoch restored and its state restored, or, for a new run, the start
// marked in its file journal.
func (j *jobRun) prepare(rank int, w *Worker) error {
	j.mu.Lock()
	j.workers[rank] = w
	j.prepared++
	if j.prepared == j.live {
		j.ready = true
		if j.stopping {
			j.begin()
		}
	}
	j.mu.Unlock()
	if j.fresh {
		if _, err := w.CheckpointFiles(0); err != nil {
			return err
		}
	} else if err := j.journals[rank].rollback(w, j.from, j.cfg.Log, fmt.Sprintf("rank %d: ", rank)); err != nil {
		return fmt.Errorf("rank %d: %w", rank, err)
	}
	var pos [2]int64
	var tails [2][]byte
	var midLine [2]bool
	if m := j.mans[rank]; m != nil {
		rc := j.states[rank]
		err := w.Restore(&State{
			MemSize:    m.MemSize,
			ReadMemory: func(dst []byte) error { return j.store.ReadMemory(m, dst) },
			Globals:    m.Globals,
			Host:       rc.Worker,
		})
		if err != nil {
			return fmt.Errorf("rank %d: %w", rank, err)
		}
		w.held = rc.Held
		// The guest's waiting goroutines compare the count with what they
		// saw before the checkpoint: one more wakes them to look again.
		w.changes.Store(rc.Changes + 1)
		pos[0], pos[1] = rc.positions()
		tails = [2][]byte{rc.StdoutTail, rc.StderrTail}
		midLine = rc.MidLine
	}
	for s, o := range j.outs[rank] {
		if o == nil {
			continue
		}
		if lost := o.restore(pos[s], tails[s], midLine[s]); lost > 0 {
			fmt.Fprintf(j.cfg.Log, "librahost: warning: rank %d: %d bytes of output were lost (the output ledger does not match the checkpoints)\n", rank, lost)
		}
	}
	return nil
}

// triggers starts periodic checkpoints.
func (j *jobRun) triggers(done <-chan struct{}) {
	periodically(j.cfg.CheckpointEvery, done, j.startRound)
}

// startRound starts a checkpoint unless one is under way.
func (j *jobRun) startRound() {
	j.mu.Lock()
	defer j.mu.Unlock()
	if e, _ := j.coord.Round(); e == 0 {
		j.begin()
	}
}
