package job

import (
	"slices"
	"sync"
	"time"

	"github.com/librahost/librahost/ckpt"
)

// DefaultHistory is how many checkpoints a Status keeps by default.
const DefaultHistory = 50

// Status follows a job as it runs, for a dashboard (Config.Status): its
// state, its ranks' and its newest checkpoints. The driver writes it; any
// goroutine may Read it.
type Status struct {
	mu   sync.Mutex
	keep int
	v    StatusView
}

// StatusView is what a Status holds at one moment.
type StatusView struct {
	State   string    `json:"state"` // starting, running, ended, failed, stopped
	Started time.Time `json:"started"`
	Ended   time.Time `json:"ended,omitzero"`
	// Ranks are the ranks run here, in rank order.
	Ranks []RankView `json:"ranks"`
	// Checkpoints are the newest checkpoints, oldest first.
	Checkpoints []Checkpoint `json:"checkpoints"`
	// Recoveries are the newest recoveries from a lost host (a share's),
	// oldest first.
	Recoveries []Recovery `json:"recoveries,omitempty"`
}

// RankView is one rank run here.
type RankView struct {
	Rank  int    `json:"rank"`
	State string `json:"state"` // running, exited, failed, stopped
	Exit  int    `json:"exit"`
	Error string `json:"error,omitempty"`
}

// Checkpoint is one checkpoint of a job (an epoch) as this host saw it.
type Checkpoint struct {
	Epoch  uint64 `json:"epoch"`
	Status string `json:"status"` // pending, committed, failed
	// Acked of Of ranks have their part durable.
	Acked     int       `json:"acked"`
	Of        int       `json:"of"`
	Triggered time.Time `json:"triggered"`
	// Duration is from the trigger until the commit (or the failure).
	Duration time.Duration `json:"duration,omitempty"`
	// Size is the stored size of every chunk the checkpoint uses;
	// Incremental the bytes it added to the store.
	Size        uint64 `json:"size,omitempty"`
	Incremental uint64 `json:"incremental,omitempty"`
	Error       string `json:"error,omitempty"`
}

// Recovery is a recovery of a job over several hosts from the loss of a
// host, as this host saw it: the job's ranks went back to a committed
// epoch as a new incarnation.
type Recovery struct {
	Incarnation uint64 `json:"incarnation"`
	// Epoch is the committed epoch the job rolled back to (0: its start).
	Epoch uint64 `json:"epoch"`
	// Lost are the hosts the job lost (by ckpt.HostID): those whose ranks
	// the new placement moves away.
	Lost []ckpt.HostID `json:"lost"`
	// Moved are the ranks restarted here from their replicas.
	Moved []int `json:"moved,omitempty"`
	// Began is when the loss was found (on the coordinator's host) or the
	// rollback reached this host (on the others); Took is from then until
	// the ranks ran again, 0 while the recovery is under way.
	Began time.Time     `json:"began"`
	Took  time.Duration `json:"took,omitempty"`
}

// keepRecoveries is how many recoveries a Status keeps.
const keepRecoveries = 16

// Checkpoint statuses.
const (
	CheckpointPending   = "pending"
	CheckpointCommitted = "committed"
	CheckpointFailed    = "failed"
)

// NewStatus makes a Status that keeps the newest keep checkpoints
// (DefaultHistory if keep <= 0).
func NewStatus(keep int) *Status {
	if keep <= 0 {
		keep = DefaultHistory
	}
	return &Status{keep: keep, v: StatusView{State: "starting", Started: time.Now()}}
}

// Read returns a copy of what s holds.
func (s *Status) Read() StatusView {
	s.mu.Lock()
	defer s.mu.Unlock()
	v := s.v
	v.Ranks = slices.Clone(v.Ranks)
	v.Checkpoints = slices.Clone(v.Checkpoints)
	v.Recoveries = slices.Clone(v.Recoveries)
	for i := range v.Recoveries {
		v.Recoveries[i].Lost = slices.Clone(v.Recoveries[i].Lost)
		v.Recoveries[i].Moved = slices.Clone(v.Recoveries[i].Moved)
	}
	return v
}

// update changes s under its lock; a nil Status is not kept.
func (s *Status) update(f func(v *StatusView)) {
	if s == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	f(&s.v)
}

// checkpoint changes the entry of epoch, adding it if new and dropping
// the oldest past s.keep.
func (s *Status) checkpoint(epoch uint64, f func(c *Checkpoint)) {
	s.update(func(v *StatusView) {
		v.Checkpoints = upsert(v.Checkpoints, s.keep, func(c Checkpoint) bool { return c.Epoch == epoch }, Checkpoint{Epoch: epoch}, f)
	})
}

// recovery changes the entry of incarnation inc, adding it if new and
// dropping the oldest past keepRecoveries.
func (s *Status) recovery(inc uint64, f func(r *Recovery)) {
	s.update(func(v *StatusView) {
		v.Recoveries = upsert(v.Recoveries, keepRecoveries, func(r Recovery) bool { return r.Incarnation == inc }, Recovery{Incarnation: inc}, f)
	})
}

// upsert changes the newest entry of list that is, or else adds one made
// from add, and keeps the newest keep.
func upsert[T any](list []T, keep int, is func(T) bool, add T, f func(*T)) []T {
	for i := len(list) - 1; i >= 0; i-- {
		if is(list[i]) {
			f(&list[i])
			return list
		}
	}
	list = append(list, add)
	f(&list[len(list)-1])
	if n := len(list) - keep; n > 0 {
		list = slices.Delete(list, 0, n)
	}
	return list
}

// rank sets a rank's state.
func (s *Status) rank(rank int, state string, exit int, err error) {
	s.update(func(v *StatusView) {
		for i := range v.Ranks {
			if r := &v.Ranks[i]; r.Rank == rank {
				r.State, r.Exit = state, exit
				if err != nil {
					r.Error = err.Error()
				}
			}
		}
	})
}
