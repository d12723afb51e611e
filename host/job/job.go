package job

import (
	"context"
	"errors"
	"io"
	"time"

	"github.com/librahost/librahost/host"
	"github.com/librahost/librahost/host/metrics"
	"github.com/librahost/librahost/transport"
	"github.com/librahost/librahost/wasi"
)

// Mount is a host directory a guest sees (`--dir HOST:GUEST[:ro]`).
type Mount = wasi.Mount

// Config is one job: `librahost run` (a job of one), `run -n N`, a
// resume or restore of either, or one host's share of a job submitted
// to a cluster. Zero means default.
type Config struct {
	// ModulePath is the module; for a resume, "" means the copy in
	// StateDir. Module, if set, is the module itself (a host's share),
	// ModuleName its name for messages.
	ModulePath string
	Module     []byte
	ModuleName string

	// N is the job's number of workers (ranks 0..N-1); 0 means 1, and a
	// resume takes the run record's.
	N int
	// Ranks are the ranks run here; nil means all of them. Only a job
	// without a state directory runs a share of its ranks (node).
	Ranks []int
	// Endpoint carries the ranks' messages; nil makes an in-process one
	// for a job on this host alone. The caller of a share gives the one
	// that reaches the other hosts, and closes it.
	Endpoint *transport.Endpoint

	Args   []string
	Env    []string
	Mounts []Mount

	Stdin          io.Reader // given to rank 0; the others read nothing
	Stdout, Stderr io.Writer // the process's streams, shared by the ranks
	// Prefix starts every line a worker prints with "[rank] ".
	Prefix bool
	// RankOutput, if set, gives each rank's streams (1 stdout, 2 stderr)
	// their own writer instead of Stdout and Stderr (a host's share: the
	// submitter puts them together).
	RankOutput func(rank int, stream byte) io.Writer
	Log        io.Writer // librahost's own lines; default discarded

	CacheDir string // wazero compilation cache; "" none
	// Stop, when closed, stops the job: after a final checkpoint if it
	// has a state directory. The job then ends with ErrStopped.
	Stop <-chan struct{}

	// Deterministic makes clocks and random numbers come from Seed.
	Deterministic bool
	Seed          uint64

	// StateDir holds the job's checkpoints, run record, module copy,
	// output ledger and file journals; "" runs without checkpoints.
	StateDir        string
	CheckpointEvery time.Duration
	// CheckpointOverhead is the share of a rank's time that periodic
	// checkpoints may hold it up (pace.go): after one that held a rank
	// up for d, the next periodic one begins no sooner than
	// d/CheckpointOverhead after it ended. 0: no limit.
	CheckpointOverhead float64
	Keep               int    // checkpoints kept, default 3
	Resume             bool   // continue the job in StateDir (N and the rest come from its record)
	Epoch              uint64 // with Resume: this committed epoch, not the newest good one
	Verbose            bool   // a line per checkpoint
	// Rounds is how many checkpoint rounds of a job on one host may be
	// under way at once (default 2: one asked for while another is
	// written begins at once; 1: each waits for the one before).
	Rounds int

	// Metrics, if set, is told of the job's checkpoints, workers, store
	// and links (host/metrics); Status, if set, follows its state, ranks
	// and newest checkpoints (status.go).
	Metrics *metrics.Jobs
	Status  *Status

	// Share, with Ranks and Endpoint, makes a host's share of a job over
	// several hosts take part in the job's checkpoints (share.go).
	Share *Share
}

// Run runs a job to its end. The exit code is the first non-zero exit
// code by rank, or 0; a trap in any worker ends the job with that error;
// a stop ends it with ErrStopped.
func Run(ctx context.Context, cfg Config) (int, error) {
	j, err := newJob(cfg)
	if err != nil {
		return 1, err
	}
	defer j.close()
	if err := j.open(); err != nil {
		if errors.Is(err, errFinished) {
			j.logf("the %s in %s already finished with exit code %d", j.what(), cfg.StateDir, j.rec.Exit)
			return j.rec.Exit, nil
		}
		return 1, err
	}
	res, err := j.run(ctx)
	if err != nil {
		return 1, err
	}
	if j.stopped() {
		return 130, ErrStopped
	}
	code, err := res.Outcome()
	if err != nil || j.store == nil {
		return code, err
	}
	return j.finish(code)
}

// RunShare runs the ranks cfg.Ranks of a job on this host, through the
// Endpoint given, and reports how each ended (host/node). With cfg.Share
// it takes part in the job's checkpoints; StateDir must be "".
func RunShare(ctx context.Context, cfg Config) (host.RanksResult, error) {
	if cfg.StateDir != "" {
		return host.RanksResult{}, errors.New("job: a share of a job over several hosts keeps its checkpoints in Share.Store, not a state directory")
	}
	j, err := newJob(cfg)
	if err != nil {
		return host.RanksResult{}, err
	}
	defer j.close()
	if err := j.open(); err != nil {
		return host.RanksResult{}, err
	}
	if cfg.Share != nil {
		if j.share, err = newShareRun(j, cfg.Share); err != nil {
			return host.RanksResult{}, err
		}
		return j.share.run(ctx)
	}
	return j.run(ctx)
}
