// Package build drives the toolchains behind `librahost build`: it turns a
// Go package directory, C files or an existing WASI module into a module
// that librahost can checkpoint, and records how it was built in the
// module's librahost.build custom section.
//
//   - A Go main package is built as a wasip1 reactor with the guest SDK
//     linked in (go build -buildmode=c-shared). It needs no
//     instrumentation: the host captures Go's own state, at runtime
//     offsets verified per Go release, so only a release in VerifiedGo
//     is accepted.
//   - C files are compiled with clang-14 against Debian's wasi-libc, then
//     instrumented with Binaryen's asyncify pass so that every libra.* and
//     WASI import is a capture point.
//   - An existing WASI command module (Rust, Zig, a plain Go build) goes
//     through the same asyncify pass.
//
// Nothing is needed beyond Go for the first kind, and the Debian packages
// clang-14, lld-14, wasi-libc, libclang-rt-14-dev-wasm32 and binaryen for
// the others. The SDK comes from the librahost binary itself.
package build
