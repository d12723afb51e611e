package host

import (
	"encoding/json"
	"fmt"
	"time"
)

// StateInfo is what the host state of a Worker's checkpoint says, for a
// job driver and `ckpt inspect`.
type StateInfo struct {
	Kind           string
	Clock          time.Duration // the guest's monotonic time
	Stdout, Stderr int64         // the guest's positions in its streams
	WASI           int           // bytes of WASI state
	// Run is the run binding a single run of an earlier release kept in
	// its checkpoints (Config.Run); absent otherwise.
	Run json.RawMessage
}

// ParseState reads a checkpoint's host state (Capture.Host).
func ParseState(b []byte) (StateInfo, error) {
	var hs hostState
	if err := json.Unmarshal(b, &hs); err != nil {
		return StateInfo{}, fmt.Errorf("host: checkpoint host state: %w", err)
	}
	return StateInfo{Kind: hs.Kind, Clock: time.Duration(hs.Clock), Stdout: hs.Stdout, Stderr: hs.Stderr, WASI: len(hs.WASI), Run: hs.Run}, nil
}
