package job

import (
	"errors"

	"github.com/librahost/librahost/host"
)

var (
	// ErrUnfinished: the state directory holds an unfinished run.
	ErrUnfinished = errors.New("job: unfinished run")
	// ErrNoCheckpoint: there is nothing to resume from.
	ErrNoCheckpoint = errors.New("job: no usable checkpoint")
	// ErrForeignRun: a checkpoint belongs to another run than the state
	// directory's (another run ID, arguments, environment or mounts).
	ErrForeignRun = errors.New("job: checkpoint of another run")
	// ErrDamagedState: a file of the state directory is damaged.
	ErrDamagedState = errors.New("job: damaged state")
	// ErrStopped: the job was stopped (after a final checkpoint if it has
	// a state directory).
	ErrStopped = host.ErrStopped
	// ErrEpochsKept: the protocol stopped a share of a job over several
	// hosts (its coordinator's host lost, or a rank's checkpoint on no
	// live host); its committed epochs are kept on the hosts left, and
	// `submit --resume` can continue it.
	ErrEpochsKept = errors.New("job: stopped, its committed epochs kept")
	// ErrDeclaredLost: the job's coordinator declared this host lost (it
	// was not heard from within the failure timeout) while it lived: its
	// share stopped, and the job goes on on the other hosts.
	ErrDeclaredLost = errors.New("job: this host was declared lost")

	errFinished = errors.New("job: run already finished")
)

// keptError is why the protocol stopped a share: it says why, and is
// ErrEpochsKept.
type keptError struct{ why string }

func (e keptError) Error() string        { return e.why }
func (e keptError) Is(target error) bool { return target == ErrEpochsKept }

// lostError is why a share stopped whose host was declared lost: it
// says why, and is ErrDeclaredLost.
type lostError struct{ why string }

func (e lostError) Error() string        { return e.why }
func (e lostError) Is(target error) bool { return target == ErrDeclaredLost }
