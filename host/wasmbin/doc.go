// Package wasmbin reads and rewrites WebAssembly binary modules, just as much
// as librahost needs: the imports, exports, globals, memory limits, function
// count and custom sections of a module, exporting its mutable globals so
// that the host can save and restore them, and reading and writing custom
// sections such as librahost.build.
//
// It has no dependency beyond the standard library. Every decoder error is a
// one-line error wrapping ErrNotWasm or ErrMalformed; no input makes it panic.
package wasmbin
