// Package host runs one WebAssembly guest in wazero as a Worker and makes it
// checkpointable without the program's help.
//
// A Worker loads and validates a module, rewrites it to export every
// mutable global, instantiates it with librahost's own WASI (package wasi)
// and the "libra" imports, runs it, and pauses it when a checkpoint is
// pending:
//
//   - a Go guest built by `librahost build` keeps its goroutine stacks in
//     linear memory; the SDK's libra_run export returns to the host when a
//     checkpoint is pending, and while one is the host forces Go's
//     cooperative preemption so that the guest gets there within
//     milliseconds wherever it is;
//   - any other guest built by `librahost build` went through Binaryen's
//     asyncify pass, and unwinds its call stack at the next libra.* or WASI
//     import.
//
// Whatever its kind, the guest's code is also given regular calls of
// libra.preempt (wasmbin.InsertPreemption): wazero's compiled code cannot
// be preempted by Go, and a guest that computed without calling the host
// held up every stop-the-world of the process (the garbage collector's)
// and, with GOMAXPROCS such guests, every other goroutine: signals, the
// control socket, a host's daemon. The call returns at once (it is never
// an asyncify capture point); it only ends a guest whose run was
// cancelled, or has it wait while a copy-on-write capture's pool of
// shadow blocks is full. The handler that fills the pool zeroes the
// guest's counter, so that the guest makes that call at its next loop
// head (preempt_counter.go, dirty.Tracker.ZeroWhenFull).
//
// Memory, globals, asyncify data and the host-side state (fd table, clocks,
// output positions) then go to the checkpoint store (package ckpt), and a
// fresh instance, in this or another process, restores from them: with
// State.Lazy, the guest starts before its memory is read, each chunk
// filled on its first touch (host/lazy, worker_lazy.go).
//
// RunRanks runs some ranks of a job, each in a Worker of its own,
// exchanging messages through a transport Endpoint; a Worker knows
// nothing of jobs. The job driver (host/job) runs a job of 1..N ranks
// with its state directory, checkpoints and output; host/node runs a
// host's share of a job over several hosts through it.
package host
