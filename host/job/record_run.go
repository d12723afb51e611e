package job

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
)

// runBinding is what every checkpoint says of the run it belongs to: the
// run's ID, made at its first start and kept in the run record, and what
// the guest was started with. A resume refuses a checkpoint of another run
// (a store copied from another state directory), even of the same module;
// and a state directory that lost its run record rebuilds it from the
// binding of its newest checkpoint.
//
// Checkpoints made before runs were bound have no binding; they resume as
// before, bound to the module only.
type runBinding struct {
	ID string `json:"id"`
	runSpec
}

// newRunID returns a new random run ID.
func newRunID() string {
	var b [8]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// binding returns the record's run binding, JSON-encoded for a checkpoint.
func (r *runRecord) binding() json.RawMessage {
	b, _ := json.Marshal(&runBinding{ID: r.RunID, runSpec: r.runSpec})
	return b
}

// checkRun refuses a checkpoint of epoch whose run binding (raw, from its
// host state) is not the record's run, naming what differs. A checkpoint
// without a binding is accepted.
func (r *runRecord) checkRun(epoch uint64, raw json.RawMessage) error {
	if len(raw) == 0 {
		return nil
	}
	var b runBinding
	if err := json.Unmarshal(raw, &b); err != nil {
		return fmt.Errorf("%w: checkpoint %d: its run binding is damaged: %v", ErrForeignRun, epoch, err)
	}
	diff := r.runSpec.diff(&b.runSpec)
	if b.ID == r.RunID {
		if len(diff) > 0 { // the record changed behind librahost's back
			return recordDamaged("", strings.Join(diff, ", "))
		}
		return nil
	}
	what := "the same arguments"
	if len(diff) > 0 {
		what = "other " + strings.Join(diff, ", other ")
	}
	return fmt.Errorf("%w: checkpoint %d belongs to run %s (%s), not to this state dir's run %s; resume that run from its own state dir, or remove ckpt.db to start this one over",
		ErrForeignRun, epoch, b.ID, what, r.RunID)
}

// diff names what of b differs from r.
func (r *runSpec) diff(b *runSpec) []string {
	var diff []string
	if !slices.Equal(b.Args, r.Args) {
		diff = append(diff, fmt.Sprintf("arguments %q, this run's %q", b.Args, r.Args))
	}
	if !slices.Equal(b.Env, r.Env) {
		diff = append(diff, "environment")
	}
	if !slices.Equal(b.Mounts, r.Mounts) {
		diff = append(diff, "mounts")
	}
	if b.Deterministic != r.Deterministic || b.Seed != r.Seed {
		diff = append(diff, "seed")
	}
	if b.N != r.N && max(b.N, 1) != max(r.N, 1) {
		diff = append(diff, fmt.Sprintf("%d workers, this run's %d", max(b.N, 1), max(r.N, 1)))
	}
	if b.Prefix != r.Prefix {
		diff = append(diff, "--prefix")
	}
	return diff
}

// hostRun returns the run binding of a single run's checkpoint host state.
func hostRun(host []byte) json.RawMessage {
	var hs struct {
		Run json.RawMessage `json:"run"`
	}
	if json.Unmarshal(host, &hs) != nil {
		return nil
	}
	return hs.Run
}

// describeRun is a checkpoint's run binding for `ckpt inspect`.
func describeRun(raw json.RawMessage) string {
	var b runBinding
	switch {
	case len(raw) == 0:
		return "(not recorded: made by an earlier librahost)"
	case json.Unmarshal(raw, &b) != nil:
		return "(damaged)"
	}
	return fmt.Sprintf("%s, arguments %q", b.ID, b.Args)
}
