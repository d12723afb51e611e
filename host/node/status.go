package node

import (
	"errors"
	"fmt"
	"time"

	driver "github.com/librahost/librahost/host/job"
)

// HostStatus is what a host reports of itself.
type HostStatus struct {
	Host    string      `json:"host"`
	Cluster string      `json:"cluster"`
	Listen  string      `json:"listen"`
	Started time.Time   `json:"started"`
	Jobs    []JobStatus `json:"jobs"`
}

// HostEntry is one host of a status report (`librahost status --json`,
// the dashboard's /api/status): its status, or why there is none.
type HostEntry struct {
	Addr   string      `json:"addr"`
	State  string      `json:"state,omitempty"` // down, refused or failed
	Error  string      `json:"error,omitempty"`
	Status *HostStatus `json:"status,omitempty"`
}

// HostEntries pairs QueryStatus's results with their addresses.
func HostEntries(addrs []string, sts []HostStatus, errs []error) []HostEntry {
	out := make([]HostEntry, len(addrs))
	for i, a := range addrs {
		out[i].Addr = a
		if errs[i] != nil {
			out[i].State, out[i].Error = problemState(errs[i]), errs[i].Error()
		} else {
			out[i].Status = &sts[i]
		}
	}
	return out
}

// problemState is why a host could not be queried: down, refused or
// failed.
func problemState(err error) string {
	if he, ok := errors.AsType[*HostError](err); ok {
		return he.State()
	}
	return "failed"
}

// JobStatus is a job's part on one host.
type JobStatus struct {
	ID        string    `json:"id"`
	Module    string    `json:"module"`
	N         int       `json:"n"`
	Submitter string    `json:"submitter"`
	State     string    `json:"state"` // preparing, running, ended, failed, cancelled
	Started   time.Time `json:"started"`
	Ended     time.Time `json:"ended,omitzero"`
	// Why is the one line the job ended with here (a cancel, a host's
	// failure), if not by its ranks' exits alone.
	Why string `json:"why,omitempty"`
	// Detached: submitted with `submit --detach` (by the Submitter host
	// on the user's behalf).
	Detached bool           `json:"detached,omitempty"`
	Workers  []WorkerStatus `json:"workers"`
	// Checkpoints are the job's newest checkpoints here (at most
	// job.DefaultHistory), oldest first.
	Checkpoints []driver.Checkpoint `json:"checkpoints,omitempty"`
	// Recoveries are the job's newest recoveries from a lost host, as
	// this host took part in them, oldest first.
	Recoveries []Recovery `json:"recoveries,omitempty"`
}

// Recovery is a recovery of a job from the loss of a host (job.Recovery),
// its hosts named.
type Recovery struct {
	Incarnation uint64 `json:"incarnation"`
	// Epoch is the committed epoch the job rolled back to (0: its start).
	Epoch uint64 `json:"epoch"`
	// Lost names the hosts the job lost.
	Lost []string `json:"lost"`
	// Moved are the ranks restarted on this host from their replicas.
	Moved []int `json:"moved,omitempty"`
	// Began is when the loss was found (on the coordinator's host) or the
	// rollback reached this host; Took is from then until the job's ranks
	// here ran again, 0 while the recovery is under way.
	Began time.Time     `json:"began"`
	Took  time.Duration `json:"took,omitempty"`
}

// namedRecoveries names the lost hosts of a job's recoveries by hosts
// (the job's, by ckpt.HostID).
func namedRecoveries(rs []driver.Recovery, hosts []string) []Recovery {
	var out []Recovery
	for _, r := range rs {
		nr := Recovery{Incarnation: r.Incarnation, Epoch: r.Epoch, Moved: r.Moved, Began: r.Began, Took: r.Took, Lost: []string{}}
		for _, h := range r.Lost {
			name := fmt.Sprintf("h%d", h)
			if h >= 0 && int(h) < len(hosts) {
				name = hosts[h]
			}
			nr.Lost = append(nr.Lost, name)
		}
		out = append(out, nr)
	}
	return out
}

// WorkerStatus is one rank on a host.
type WorkerStatus struct {
	Rank  int    `json:"rank"`
	State string `json:"state"` // starting, running, exited, failed, stopped
	Exit  int    `json:"exit"`
	Error string `json:"error,omitempty"`
}

// Job and worker states.
const (
	statePreparing = "preparing"
	stateRunning   = "running"
	stateEnded     = "ended"
	stateFailed    = "failed"
	stateCancelled = "cancelled"

	workerStarting = "starting"
	workerRunning  = "running"
	workerExited   = "exited"
	workerFailed   = "failed"
	workerStopped  = "stopped"
)

// whyBySubmitter is why a host's part of a job ended when its submitter
// cancelled it, which it does to every host when one host's part ends by
// a cancel or a failure: that host's own reason is the job's.
const whyBySubmitter = "cancelled by the submitter"

// keepEnded is how many ended jobs a host lists in its status (the
// newest; its records keep more).
const keepEnded = 16
