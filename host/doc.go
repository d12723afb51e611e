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
// Memory, globals, asyncify data and the host-side state (fd table, clocks,
// output positions) then go to the checkpoint store (package ckpt), and a
// fresh instance, in this or another process, restores from them.
//
// Session drives a Worker for the CLI: a state directory, periodic and
// requested checkpoints, resume, output exactly once.
//
// A state directory's own files are checked on resume, and damage is
// refused in one line or repaired, never a reason to drop checkpoints:
// each checkpoint is bound to its run (a run ID and what the run was
// started with, state_run.go), so a store of another run is refused and a
// lost run record is rebuilt from the newest checkpoint
// (session_record_check.go); a damaged copy of the module is repaired from
// the module given; the file journal decides which epochs a guest with
// mounts may resume from (session_journal.go); the output ledger's records
// are checksummed and kept twice (ledger_map.go), and a ledger that cannot
// be trusted makes the resume print again from the checkpoint.
package host
