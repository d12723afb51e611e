package node

import "time"

// HostStatus is what a host reports of itself.
type HostStatus struct {
	Host    string      `json:"host"`
	Cluster string      `json:"cluster"`
	Listen  string      `json:"listen"`
	Started time.Time   `json:"started"`
	Jobs    []JobStatus `json:"jobs"`
}

// JobStatus is a job's part on one host.
type JobStatus struct {
	ID        string         `json:"id"`
	Module    string         `json:"module"`
	N         int            `json:"n"`
	Submitter string         `json:"submitter"`
	State     string         `json:"state"` // preparing, running, ended, failed, cancelled
	Started   time.Time      `json:"started"`
	Ended     time.Time      `json:"ended,omitzero"`
	Workers   []WorkerStatus `json:"workers"`
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

// keepEnded is how many ended jobs a host keeps for status.
const keepEnded = 16
