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
// Rights are enforced as the preview1 witx names them (fs_rights.go): each
// import checks the rights of its fd after the checks of the fd's kind,
// fd_fdstat_set_rights only narrows them, and path_open gives a new fd the
// rights asked for that apply to its kind, refusing those the directory's
// inheriting rights lack. Symbolic links a guest creates may not have an
// absolute target (EPERM, as wasmtime). No fd is a socket: sock_* calls
// fail with EBADF or ENOTSOCK.
//
// Every change to mounted files (writes, truncation, creation, renames,
// removals, links, time changes) goes through one internal layer
// (fs_write.go). With Config.Journal set, that layer tracks the changes of
// each epoch for the file delta CheckpointFiles returns (namespace
// operations, sizes, and the current contents of the written ranges only),
// and, from the first CheckpointFiles or RollbackFiles on, appends to the
// journal what undoes each change before making it: the prior contents of
// a range the first time it is overwritten in an epoch, a file's size and
// times at its first change, created paths, removed files (moved to a
// trash directory beside the journal, or copied there across file
// systems), removed directories and symbolic links, renames and time
// changes. Records carry a length and a CRC-32C, so a record torn by a kill
// is ignored, and a change is made only after its record is written.
// RollbackFiles(e) undoes, newest first, everything after the seal of
// checkpoint e, keeping its progress in the journal; ReleaseFiles compacts
// the journal when old checkpoints are gone. A host that wants to roll a
// fresh run back to its start calls CheckpointFiles(0) before the guest
// runs. A damaged record between intact ones (a failing disk's, not a
// kill's) is skipped (fs_journal_scan.go): a damaged seal holds nothing to
// undo, so the epochs before it stay reachable; other damage makes every
// epoch sealed before it unreachable. JournalEpochs tells a resuming host,
// without changing the journal, which epochs it can roll back to.
// RedoFiles redoes file deltas, one or several of consecutive checkpoints
// laid end to end, on another copy of the mounts (a rank moved to another
// host).
//
// Config.Deterministic replaces the clocks by virtual ones and random_get
// by a seeded stream, both saved by Snapshot (wasi_determinism.go).
//
// A System is owned by the goroutine running its guest. Snapshot, Restore,
// CheckpointFiles, RollbackFiles, ReleaseFiles and Close must not run while
// the guest is inside an import.
package wasi
