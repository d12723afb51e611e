// Package wasmbin reads and rewrites WebAssembly binary modules, just as much
// as librahost needs: the imports, exports, globals, memory limits, function
// count and custom sections of a module, exporting its mutable globals so
// that the host can save and restore them, reading and writing custom
// sections such as librahost.build, and giving a module's code regular
// calls of a host import (InsertPreemption), so that a guest that computes
// without calling the host still leaves wazero's compiled code for Go now
// and then.
//
// For the last it decodes function bodies: every instruction of the core
// specification and of the proposals wazero implements (threads, SIMD and
// relaxed SIMD, tail calls, exception handling, typed function
// references, multi-memory and memory64 memory arguments). A body is
// encoded again by copying the decoded instructions' bytes, changing only
// the function indices that move and adding the checks, so the rest stays
// byte for byte as it was.
//
// It has no dependency beyond the standard library. Every decoder error is a
// one-line error wrapping ErrNotWasm or ErrMalformed; no input makes it panic.
package wasmbin
