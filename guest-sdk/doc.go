// Package libra is the guest side of librahost: what a program compiled to
// WebAssembly links to learn its rank, exchange messages with the other
// workers of its job and cooperate with checkpoints.
//
// A program needs no call into this package to be checkpointed: a Go main
// package that never imports it is built by `librahost build` with this
// package added, and the host pauses it wherever it is. The calls here are
// for programs that want more: Rank and Size, Yield in a long loop, an
// explicit Checkpoint, and the message calls.
//
// Host imports live under the Wasm module name "libra". The same calls are
// available to C programs through libra.h.
package libra
