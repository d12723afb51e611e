package job

import (
	"encoding/json"
	"fmt"

	"github.com/librahost/librahost/host"
	"github.com/librahost/librahost/transport"
)

// rankStateVersion is the version of the encoding of rankCheckpoint.
const rankStateVersion = 1

// rankCheckpoint is the host state of one rank's checkpoint in a job
// epoch: the Worker's own host state, and what the job adds around it —
// the rank's share of the transport's channel state at the cut, the output
// it held back (a partial line), the message a too-small receive buffer
// kept back, and, for a rank whose program had ended, its exit code.
type rankCheckpoint struct {
	Version    int             `json:"version"`
	Ended      bool            `json:"ended,omitempty"`
	Exit       int             `json:"exit_code,omitempty"`
	Worker     json.RawMessage `json:"worker,omitempty"` // hostState; absent when Ended
	StdoutTail []byte          `json:"stdout_tail,omitempty"`
	StderrTail []byte          `json:"stderr_tail,omitempty"`
	// MidLine says, by stream, that what was printed before the tail
	// ended inside a line (a line longer than a rank holds back).
	MidLine [2]bool            `json:"mid_line,omitempty"`
	Changes uint64             `json:"inbox_changes,omitempty"`
	Held    *transport.Message `json:"held,omitempty"`
	Comm    []byte             `json:"comm"` // transport.AppendRankState
	// Run is the run the checkpoint belongs to (runBinding); absent in
	// checkpoints made before runs were bound.
	Run json.RawMessage `json:"run,omitempty"`
	// Kind is set in the host state of a single run of an earlier
	// release, which is the Worker's own (state_legacy.go).
	Kind string `json:"kind,omitempty"`
	// FilesBase is, in a job over several hosts, the epoch of the rank's
	// checkpoint whose files its file delta goes on from (0: the files
	// as the job started): a host the rank moves to redoes the chain.
	FilesBase uint64 `json:"files_base,omitempty"`
	// Stopped is, in a migrating rank's last state, when it stopped at
	// its source (unix ns): its target says how long it was stopped.
	Stopped int64 `json:"stopped,omitempty"`
}

// decodeRankCheckpoint reads rank's job state from a checkpoint's host
// state; a single run of an earlier release saved the Worker's alone.
func decodeRankCheckpoint(b []byte, rank int) (*rankCheckpoint, *transport.RankState, error) {
	var rc rankCheckpoint
	if err := json.Unmarshal(b, &rc); err != nil {
		return nil, nil, fmt.Errorf("job: checkpoint job state: %w", err)
	}
	if rc.Kind != "" {
		return legacyCheckpoint(b, rank)
	}
	if rc.Version != rankStateVersion {
		return nil, nil, fmt.Errorf("job: checkpoint job state version %d, want %d", rc.Version, rankStateVersion)
	}
	comm, err := transport.DecodeRankState(rc.Comm)
	if err != nil {
		return nil, nil, fmt.Errorf("job: checkpoint channel state: %w", err)
	}
	return &rc, &comm, nil
}

// positions returns the guest's stdout and stderr positions it holds.
func (rc *rankCheckpoint) positions() (int64, int64) {
	si, err := host.ParseState(rc.Worker)
	if err != nil {
		return 0, 0
	}
	return si.Stdout, si.Stderr
}
