// Package wasi implements the wasi_snapshot_preview1 host module for guests
// run in wazero.
//
// Every import is implemented here rather than by wazero's built-in WASI so
// that all host-side state a guest can observe is checkpoint state: the fd
// table (kinds, preopens, guest paths, offsets, flags, rights, directory
// cookies), the pending sleep deadline of an interrupted poll_oneoff, and the
// clocks (which the host supplies through Config so they continue across a
// restore).
//
// Guests see only the directories listed in Config.Mounts, preopened in mount
// order starting at fd 3. Path resolution walks the guest's namespace one
// component at a time, following symbolic links (relative and absolute)
// within that namespace, and every host operation is finally performed
// through an os.Root for the mount, so neither "..", a symbolic link nor a
// concurrent rename can reach a file outside a mount.
//
// Every change to mounted files (writes, truncation, creation, renames,
// removals, time changes) goes through one internal layer (fs_write.go), the
// place where undo data for file rollback is to be recorded.
//
// A System is owned by the goroutine running its guest. Snapshot, Restore and
// Close must not run while the guest is inside an import.
package wasi
