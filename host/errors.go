package host

import "errors"

var (
	// ErrNotCheckpointable: the module was not built by `librahost build`.
	ErrNotCheckpointable = errors.New("host: module was not built by `librahost build` and cannot be checkpointed")
	// ErrNotWasm: the input is not a WebAssembly module.
	ErrNotWasm = errors.New("host: not a WebAssembly module")
	// ErrStopped: the worker was stopped after a final checkpoint.
	ErrStopped = errors.New("host: stopped after a final checkpoint")
	// ErrMoved: OnPause handed the worker's state to another host, which
	// runs it on; the worker ends here without an exit of its own.
	ErrMoved = errors.New("host: the worker moved to another host")
)

// TrapError is a guest that trapped. Its message is one line.
type TrapError struct {
	Msg string
}

func (e *TrapError) Error() string { return "guest trapped: " + e.Msg }
