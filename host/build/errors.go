package build

import (
	"errors"
	"fmt"
)

var (
	// ErrToolMissing is matched by every ToolError.
	ErrToolMissing = errors.New("build: tool not found")
	// ErrAlreadyBuilt is returned for a module that already went through
	// librahost build.
	ErrAlreadyBuilt = errors.New("build: module was already built by librahost build")
	// ErrNotCommand is returned for a .wasm input without a _start export.
	ErrNotCommand = errors.New("build: not a WASI command module (no _start export)")
	// ErrUnknownInput is returned when the inputs are none of the kinds
	// Build knows.
	ErrUnknownInput = errors.New("build: give a Go package directory, .c files or one .wasm module")
	// ErrGoNotVerified is matched by every GoVersionError.
	ErrGoNotVerified = errors.New("build: Go version not verified for native capture")
)

// ToolError reports a missing tool and how to install it.
type ToolError struct {
	Tool string // what was looked for, e.g. "clang-14"
	Hint string // how to install it
}

func (e *ToolError) Error() string { return fmt.Sprintf("build: %s not found: %s", e.Tool, e.Hint) }

// Is matches ErrToolMissing.
func (e *ToolError) Is(target error) bool { return target == ErrToolMissing }

// StepError reports a failed toolchain command. Its output went to
// Config.Stderr.
type StepError struct {
	Step string // e.g. "go build"
	Err  error
}

func (e *StepError) Error() string { return fmt.Sprintf("build: %s failed: %v", e.Step, e.Err) }

func (e *StepError) Unwrap() error { return e.Err }
