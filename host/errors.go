package host

import "errors"

var (
	// ErrNotCheckpointable: the module was not built by `librahost build`.
	ErrNotCheckpointable = errors.New("host: module was not built by `librahost build` and cannot be checkpointed")
	// ErrNotWasm: the input is not a WebAssembly module.
	ErrNotWasm = errors.New("host: not a WebAssembly module")
	// ErrUnfinished: the state directory holds an unfinished run.
	ErrUnfinished = errors.New("host: unfinished run")
	// ErrNoCheckpoint: there is nothing to resume from.
	ErrNoCheckpoint = errors.New("host: no usable checkpoint")
	// ErrForeignRun: a checkpoint belongs to another run than the state
	// directory's (another run ID, arguments, environment or mounts).
	ErrForeignRun = errors.New("host: checkpoint of another run")
	// ErrDamagedState: a file of the state directory is damaged.
	ErrDamagedState = errors.New("host: damaged state")
	// ErrStopped: the session was stopped after a final checkpoint.
	ErrStopped = errors.New("host: stopped after a final checkpoint")

	errFinished = errors.New("host: run already finished")
)

// TrapError is a guest that trapped. Its message is one line.
type TrapError struct {
	Msg string
}

func (e *TrapError) Error() string { return "guest trapped: " + e.Msg }
