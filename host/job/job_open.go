package job

import (
	"cmp"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/librahost/librahost/ckpt"
	"github.com/librahost/librahost/host"
	"github.com/librahost/librahost/host/build"
	"github.com/librahost/librahost/host/lazy"
	"github.com/librahost/librahost/transport"
)

// jobName is the Job of every checkpoint key of a job's ranks: rank r's
// checkpoints are Key{jobName, r}. A single run of an earlier release
// used legacyName (state_legacy.go).
const jobName = "job"

// jobRun is a job of 1..N ranks on this host: its state directory (the
// run record, the module, one store for every rank, the output ledger, a
// file journal per rank), its output, and the driver of its coordinated
// checkpoints (job_rounds.go). Without a state directory it only runs the
// ranks and writes their output.
type jobRun struct {
	cfg    Config
	n      int
	ranks  []int // run here
	module []byte
	rec    *runRecord
	lock   *os.File
	store  *ckpt.Store
	ledger *jobLedger
	bind   ckpt.Binding
	runTag json.RawMessage // the run binding of every checkpoint
	ep     *transport.Endpoint
	ownEp  bool // ep was made here, and is closed here
	outs   [][2]*rankOut
	share  *shareRun // a checkpointed share of a job over several hosts

	// What a resume restores: the epoch (0: the start) and, by rank, its
	// manifest and job state.
	fresh bool // a new run, not a resume
	from  uint64
	// journals are the ranks' file journals when resuming.
	journals []*journalState
	mans     []*ckpt.Manifest
	states   []*rankCheckpoint
	comm     []transport.RankState
	// A lazy restore's memory, by rank (job_lazy.go).
	lazyMem                 []*host.LazyMemory  // where each rank's chunks are read from
	lazyFor                 []*ckpt.Manifest    // the manifest each one is of
	fillers                 []chan *lazy.Filler // by rank: spawned ahead (job_lazy.go)
	lazyDecided, lazyMarked bool
	lazyWhy                 string
	checkTook               []time.Duration // by rank: its up-front check

	mu   sync.Mutex
	cond sync.Cond
	// recMu orders the run record's writes by commits, off mu, with the
	// last one at the end (recFinal): taken after mu, never before it.
	recMu    sync.Mutex
	recFinal bool
	// Each round's cut by epoch and rank, kept as each rank's write
	// completes it (keepCut, called by the store while it writes):
	// guarded by cutMu, not mu, since a holder of mu may wait for the
	// store's writes.
	cutMu sync.Mutex
	cuts  map[uint64][]transport.RankState
	// The protocol's cores, this host being the job's only one.
	coord   *ckpt.EpochCoordinator
	part    *ckpt.Participant
	pace    pacer // spaces the periodic rounds (guarded by mu)
	pumping bool  // pump is carrying out their actions
	// By rank: the newest epoch it was asked for, the newest it took (or
	// skipped: a failed round's), the newest it is to write.
	asked, taken, persist []uint64
	pauser                int            // the rank whose capture point begins a round
	workers               []*host.Worker // by rank; nil for a rank not run here
	ended                 []bool
	codes                 []int
	rounds                map[uint64]*roundState       // the rounds under way, by epoch
	stopping              bool                         // a stop was asked for
	stopAt                uint64                       // the epoch whose commit ends the job, 0 if none yet
	stopErr               error                        // why the round of stopAt failed
	aborted               bool                         // the job is failing: no more checkpoints
	live                  int                          // ranks run here
	prepared              int                          // of which prepared
	ready                 bool                         // every rank run here is prepared: checkpoints may begin
	waiters               map[uint64][]chan ckptResult // by epoch
	endWrites             []chan struct{}              // by rank: its last checkpoint as ended, closed once written
	kept                  []uint64                     // by rank: oldestKept (job_capture.go)
	obs                   observer                     // what Config.Metrics and Config.Status are told
}

func newJob(cfg Config) (*jobRun, error) {
	if cfg.Log == nil {
		cfg.Log = io.Discard
	}
	if cfg.N < 0 {
		return nil, errors.New("job: a job needs at least one worker")
	}
	if cfg.StateDir != "" && (cfg.Ranks != nil || cfg.Endpoint != nil) {
		return nil, errors.New("job: a state directory holds a whole job on this host: no Ranks or Endpoint")
	}
	j := &jobRun{cfg: cfg, pace: pacer{share: cfg.CheckpointOverhead}}
	j.cond.L = &j.mu
	return j, nil
}

func (j *jobRun) close() {
	j.closeFillers()
	if j.ep != nil && j.ownEp {
		j.ep.Close()
	}
	if j.store != nil && j.share == nil { // a share's store is its caller's
		j.store.Close()
	}
	if j.ledger != nil {
		j.ledger.Close()
	}
	if j.lock != nil {
		j.lock.Close()
	}
}

func (j *jobRun) logf(format string, args ...any) {
	fmt.Fprintf(j.cfg.Log, "librahost: "+format+"\n", args...)
}

// what names the job in messages: a job of one is a run.
func (j *jobRun) what() string {
	if j.n > 1 {
		return "job"
	}
	return "run"
}

// who prefixes a message about rank in a job of several.
func (j *jobRun) who(rank int) string {
	if j.n > 1 {
		return fmt.Sprintf("rank %d: ", rank)
	}
	return ""
}

func (j *jobRun) key(rank int) ckpt.Key { return ckpt.Key{Job: j.rec.Job, Worker: uint32(rank)} }

// journal is the path of rank's file journal; a job of one keeps the name
// a single run always had.
func (j *jobRun) journal(rank int) string {
	if j.n == 1 {
		return filepath.Join(j.cfg.StateDir, journalFile)
	}
	return filepath.Join(j.cfg.StateDir, journalFile+"."+strconv.Itoa(rank))
}

// open prepares the job: the module, and with a state directory the run
// record (new, or the one resumed), the store, the ledger, and what a
// resume restores.
func (j *jobRun) open() error {
	if j.cfg.StateDir == "" {
		return j.openStateless()
	}
	cfg := &j.cfg
	module, err := j.loadModule()
	j.module = module
	if err != nil {
		return err
	}
	resume := cfg.Resume // false when there was nothing to resume
	j.fresh = !resume
	if resume {
		if n := max(j.rec.N, 1); cfg.N > 1 && cfg.N != n {
			return fmt.Errorf("job: state dir %s holds a job of %d workers, not %d: resume it without -n", cfg.StateDir, n, cfg.N)
		}
	} else {
		j.rec.N, j.rec.Prefix = max(cfg.N, 1), cfg.Prefix
		if cfg.CheckpointEvery > 0 {
			j.rec.Extra = &recordExtra{CheckpointEvery: cfg.CheckpointEvery.String()}
		}
	}
	j.n = max(j.rec.N, 1)
	j.ranks = allRanks(j.n)
	j.runTag = j.rec.binding()
	if resume {
		j.spawnFillers()
	}
	info, ok, err := build.ReadInfo(module)
	if err != nil {
		return err
	}
	if !ok || (info.Kind != "go" && info.Kind != "asyncify") {
		return fmt.Errorf("%w (build it with `librahost build`)", host.ErrNotCheckpointable)
	}
	j.bind = ckpt.Binding{ModuleDigest: sha256.Sum256(module), Wazero: host.WazeroVersion(), Go: info.Go}
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
	if err := j.cores(); err != nil {
		return err
	}
	j.workers = make([]*host.Worker, j.n)
	j.ended = make([]bool, j.n)
	j.codes = make([]int, j.n)
	for r, st := range j.states {
		if st != nil && st.Ended {
			j.ended[r], j.codes[r] = true, st.Exit
			j.part.Ended(r)
		}
	}
	j.rec.Finished = false
	j.rec.Pid = os.Getpid()
	j.rec.Epoch = j.from
	return writeRecord(cfg.StateDir, j.rec)
}

// cores makes the protocol's cores of a job resuming from j.from.
func (j *jobRun) cores() error {
	pc := protoConfig(j.n, j.from, cmp.Or(j.cfg.Rounds, defaultRounds))
	var err error
	if j.coord, err = ckpt.NewEpochCoordinator(pc, j.from+1); err != nil {
		return err
	}
	if j.part, err = ckpt.NewParticipant(pc, 0); err != nil {
		return err
	}
	j.asked, j.taken, j.persist = make([]uint64, j.n), make([]uint64, j.n), make([]uint64, j.n)
	for r := range j.n {
		j.asked[r], j.taken[r] = j.from, j.from
	}
	j.pauser = -1
	j.rounds, j.waiters, j.cuts = map[uint64]*roundState{}, map[uint64][]chan ckptResult{}, map[uint64][]transport.RankState{}
	j.endWrites = make([]chan struct{}, j.n)
	return nil
}

// openStateless prepares a job without a state directory: the module and
// what the ranks are started with.
func (j *jobRun) openStateless() error {
	cfg := &j.cfg
	j.module = cfg.Module
	if j.module == nil {
		m, err := os.ReadFile(cfg.ModulePath)
		if err != nil {
			return fmt.Errorf("job: %w", err)
		}
		j.module = m
	}
	name := cfg.ModuleName
	if name == "" {
		name = cfg.ModulePath
	}
	j.n = max(cfg.N, 1)
	j.ranks = cfg.Ranks
	if j.ranks == nil {
		j.ranks = allRanks(j.n)
	}
	mounts := mountsToJSON(cfg.Mounts)
	if cfg.Share != nil {
		// Every host of the job binds its ranks' checkpoints to the mounts
		// as the submitter named them: a rank restored on another host
		// finds them there (a relative path from that host's working
		// directory).
		mounts = mountsAsGiven(cfg.Mounts)
	}
	j.rec = &runRecord{runSpec: runSpec{Module: name, Args: cfg.Args, Env: cfg.Env, Mounts: mounts,
		Deterministic: cfg.Deterministic, Seed: cfg.Seed, N: j.n, Prefix: cfg.Prefix}, Job: jobName}
	j.fresh = true
	j.mans = make([]*ckpt.Manifest, j.n)
	j.states = make([]*rankCheckpoint, j.n)
	j.workers = make([]*host.Worker, j.n)
	j.ended = make([]bool, j.n)
	j.codes = make([]int, j.n)
	return nil
}

func allRanks(n int) []int {
	rs := make([]int, n)
	for r := range rs {
		rs[r] = r
	}
	return rs
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
	for _, name := range []string{jobName, legacyName} {
		if err := j.store.DeleteCommitsAfter(name, 0); err != nil {
			return err
		}
	}
	for r := range j.n {
		os.Remove(j.journal(r))
		os.RemoveAll(j.journal(r) + ".trash")
	}
	return nil
}
