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

	errFinished = errors.New("job: run already finished")
)
