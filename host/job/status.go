package job

import (
	"slices"
	"sync"
	"time"
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
		for i := len(v.Checkpoints) - 1; i >= 0; i-- {
			if v.Checkpoints[i].Epoch == epoch {
				f(&v.Checkpoints[i])
				return
			}
		}
		v.Checkpoints = append(v.Checkpoints, Checkpoint{Epoch: epoch})
		f(&v.Checkpoints[len(v.Checkpoints)-1])
		if n := len(v.Checkpoints) - s.keep; n > 0 {
			v.Checkpoints = slices.Delete(v.Checkpoints, 0, n)
		}
	})
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
