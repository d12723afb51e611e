package node

import (
	"errors"
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
