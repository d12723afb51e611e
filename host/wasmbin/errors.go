package wasmbin

import (
	"errors"
	"fmt"
)

var (
	// ErrNotWasm is returned for input that does not start with the
	// WebAssembly magic number.
	ErrNotWasm = errors.New("wasmbin: not a WebAssembly module (bad magic)")
	// ErrMalformed is wrapped by every FormatError.
	ErrMalformed = errors.New("wasmbin: malformed module")
)

// FormatError describes where a module is truncated or garbled.
type FormatError struct {
	Section string // section name, "" for the header or section table
	Offset  int    // byte offset in the module where decoding failed
	Msg     string
}

func (e *FormatError) Error() string {
	if e.Section == "" {
		return fmt.Sprintf("wasmbin: malformed module at offset %#x: %s", e.Offset, e.Msg)
	}
	return fmt.Sprintf("wasmbin: malformed %s section at offset %#x: %s", e.Section, e.Offset, e.Msg)
}

// Is reports ErrMalformed as a match.
func (e *FormatError) Is(target error) bool { return target == ErrMalformed }
