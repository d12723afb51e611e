package job

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/librahost/librahost/ckpt"
	"github.com/librahost/librahost/host"
	"github.com/librahost/librahost/host/build"
	"github.com/librahost/librahost/host/jobctl"
	"github.com/librahost/librahost/transport"
)

// Share is how one host's share of a job over several hosts takes part
// in the job's checkpoints (Config.Share): ckpt's Participant for the
// ranks run here and, on the coordinator's host, the EpochCoordinator,
// their messages carried by Control (share_rounds.go). The caller (host/
// node) gives the I/O that crosses hosts: the store, the replicas, the
// commit records.
type Share struct {
	// Dir holds the ranks' file journals (journal.N).
	Dir string
	// Store holds this host's checkpoints of the job: those of the ranks
	// run here and the replicas of other hosts' ranks.
	Store *ckpt.Store
	// Proto is the job's protocol configuration; Host is this host.
	Proto ckpt.ProtoConfig
	Host  ckpt.HostID
	// Control carries the control messages between the job's hosts
	// (a *jobctl.Endpoint).
	Control Control
	// Replicate copies rank's checkpoint of epoch from Store to host to,
	// and returns once it is durable there.
	Replicate func(rank int, epoch uint64, to ckpt.HostID) error
	// PersistCommit makes a commit record durable on this host.
	PersistCommit func(rec *ckpt.CommitRecord) error
	// Before is the committed epoch before Proto.Committed (0: none
	// known), which a resume that finds Proto.Committed damaged falls
	// back to: the store keeps it (ckpt.Store.KeepFrom).
	Before uint64
	// Every is how often the coordinator begins a checkpoint; 0: only
	// when asked (Checkpoint).
	Every time.Duration
	// Overhead is the share of a rank's time periodic checkpoints may
	// hold it up (Config.CheckpointOverhead, pace.go): the coordinator
	// spaces its periodic rounds by the longest any rank of a committed
	// round was held up, which each host's DONE tells it. 0: no limit.
	Overhead float64
	// Tick is how often the failure timeout is checked. Default 50 ms.
	Tick time.Duration
	// Stop, once closed, ends the share's part in the protocol. The
	// caller closes it when the job has ended on every host: the share
	// goes on answering the other hosts after its own ranks ended, and
	// runs them again if a recovery rolls them back.
	Stop <-chan struct{}
	// Exited is told how the ranks here ended, each time they all have
	// (again after a recovery that rolled them back). RunShare with a
	// Share returns only once Stop is closed or the job fails.
	Exited func(res host.RanksResult)
	// NewEndpoint, at a recovery, closes the Endpoint of the incarnation
	// left and returns a new one of incarnation inc, whose ranks are on
	// the hosts place gives (share_recover.go); the ranks placed here
	// receive nothing until it is restored (transport's Restoring).
	NewEndpoint func(inc uint64, place []ckpt.HostID) (*transport.Endpoint, error)
	// Live, if set, resumes a job that stopped (`submit --resume`) from
	// its committed epoch Proto.Committed, Proto.Place and Proto.Holders
	// being its commit record's and Proto.Inc the newest incarnation any
	// host ran: the hosts not live are dead. The coordinator rolls every
	// live host back to the epoch as a new incarnation
	// (ckpt.EpochCoordinator.Resume), and the ranks here run only once
	// their ROLLBACK came (share_recover.go).
	Live []bool
	// Next is the epoch of the coordinator's first round; 0 means
	// Proto.Committed+1. A resume gives one past every epoch a host
	// holds, so that no round reuses an epoch of the timeline left.
	Next uint64
	// Mover moves ranks between the job's hosts (migrate.go); nil:
	// migrations and drains are refused.
	Mover *Mover

	run atomic.Pointer[shareRun]
	// stageMu orders a move's staging here against its drop; stageGen
	// counts, by rank, the drops of its moves here (migrate_stage.go).
	stageMu  sync.Mutex
	stageGen map[int]uint64
}

// Control is what a share needs of its control streams (jobctl.Endpoint).
type Control interface {
	Send(to ckpt.HostID, m ckpt.Msg) error
	Recv() <-chan jobctl.Received
	SetInc(inc uint64)
	TellCoordinator(c *ckpt.EpochCoordinator)
	TellParticipant(p *ckpt.Participant)
}

// EpochAhead tells the share that a message stamped with epoch waits for
// local rank to take its checkpoint of epoch (transport's OnEpochAhead).
// It does not block.
func (s *Share) EpochAhead(rank uint32, epoch uint64) {
	if r := s.run.Load(); r != nil {
		go r.ahead(int(rank), epoch)
	}
}

// Checkpoint asks the coordinator, if it runs on this host, for a
// checkpoint at once, and reports its epoch once committed.
func (s *Share) Checkpoint() (uint64, error) {
	r := s.run.Load()
	if r == nil {
		return 0, errors.New("job: the job is not running on this host")
	}
	return r.checkpoint()
}

// IsCoordinator reports whether this host runs the job's coordinator.
func (s *Share) IsCoordinator() bool { return s.Proto.Coordinator == s.Host }

func (s *Share) validate() error {
	if s.Dir == "" || s.Store == nil || s.Control == nil || s.Replicate == nil || s.PersistCommit == nil || s.NewEndpoint == nil {
		return errors.New("job: a checkpointed share needs a directory, a store, control streams, replicas, commit records and endpoints")
	}
	if s.Live != nil && (len(s.Live) != s.Proto.Hosts || s.Proto.Committed == 0) {
		return errors.New("job: a resumed share needs a committed epoch and the liveness of each host")
	}
	if s.Tick <= 0 {
		s.Tick = 50 * time.Millisecond
	}
	return nil
}

// shareRun is the protocol's state of a running share. Its cores are
// owned by mu.
type shareRun struct {
	j     *jobRun
	s     *Share
	fail  func(error) // ends the job on this host; the caller holds mu
	err   error       // why it did
	mu    sync.Mutex
	coord *ckpt.EpochCoordinator // on the coordinator's host only
	part  *ckpt.Participant
	pace  pacer // the coordinator's periodic rounds

	asked, taken []uint64                 // by rank: the newest epoch asked for, and taken
	persist      []uint64                 // by rank: the epoch onPause is to write
	endWrites    []chan struct{}          // by rank: its last checkpoint as ended, closed once written
	repChains    map[[2]int]chan struct{} // by (rank, host): its last replica there, closed once made
	// cuts by epoch, kept as each rank's write completes its cut (the
	// store calls keepCut while it writes the manifest); guarded by
	// cutMu, not mu: a holder of mu may wait for the store (DeleteAfter
	// waits for the key's writes), so a write must never wait for mu.
	cutMu     sync.Mutex
	cuts      map[uint64][]transport.RankState
	waiters   map[uint64][]chan error // coordinator: rounds asked for
	triggered map[uint64]time.Time    // coordinator: when the round under way began
	stopped   bool
	rec       *recovery          // the recovery under way, from its ROLLBACK to its RESUME
	rolled    chan struct{}      // a ROLLBACK came: the run under way stops (share_recover.go)
	next      *recovery          // the newest ROLLBACK's, for run to carry out
	cancelRun func()             // stops the ranks of the incarnation under way
	runCtx    context.Context    // theirs
	writes    sync.WaitGroup     // checkpoints being written here
	recoverAt time.Time          // coordinator: a host was found lost
	endFiles  map[int][]byte     // an ended rank's file delta since its last checkpoint
	files     map[int]*rankFiles // by rank here: the file deltas its next checkpoint holds (share_files.go)
	copies    map[int]*movedCopy // by rank here: the copy of its earlier checkpoints under way (share_files.go)
	chainTo   []ckpt.HostID      // the replica hosts that hold the chains of the ranks here
	rollGen   chan struct{}      // closed and made anew at each ROLLBACK
	migs      shareMigs          // migrations under way (migrate.go)
	// The participant's control messages sent and received, and the
	// rounds it was asked to take part in (MARKERs).
	sent, recvd, rounds int
}

// newShareRun sets up the protocol's cores of a share and the binding of
// its checkpoints. The caller holds no lock.
func newShareRun(j *jobRun, s *Share) (*shareRun, error) {
	if err := s.validate(); err != nil {
		return nil, err
	}
	info, ok, err := build.ReadInfo(j.module)
	if err != nil {
		return nil, err
	}
	if !ok || (info.Kind != "go" && info.Kind != "asyncify") {
		return nil, fmt.Errorf("%w (build it with `librahost build`)", host.ErrNotCheckpointable)
	}
	j.bind = ckpt.Binding{ModuleDigest: sha256.Sum256(j.module), Wazero: host.WazeroVersion(), Go: info.Go}
	j.runTag = j.rec.binding()
	j.store = s.Store
	if s.Proto.Committed > 0 {
		if s.Before > 0 && s.Before < s.Proto.Committed {
			j.store.KeepFrom(j.rec.Job, s.Before)
		}
		j.store.KeepFrom(j.rec.Job, s.Proto.Committed)
	}
	r := &shareRun{j: j, s: s, pace: pacer{share: s.Overhead}, asked: make([]uint64, j.n), taken: make([]uint64, j.n), persist: make([]uint64, j.n),
		endWrites: make([]chan struct{}, j.n), repChains: map[[2]int]chan struct{}{},
		cuts: map[uint64][]transport.RankState{}, waiters: map[uint64][]chan error{}, triggered: map[uint64]time.Time{},
		rolled: make(chan struct{}, 1), endFiles: map[int][]byte{}, files: map[int]*rankFiles{},
		copies: map[int]*movedCopy{}, rollGen: make(chan struct{})}
	if r.part, err = ckpt.NewParticipant(s.Proto, s.Host); err != nil {
		return nil, err
	}
	r.chainTo = ckpt.ReplicaHosts(s.Host, r.part.Live(), s.Proto.Replicas)
	if s.IsCoordinator() {
		if r.coord, err = ckpt.NewEpochCoordinator(s.Proto, s.Next); err != nil {
			return nil, err
		}
	}
	return r, nil
}
