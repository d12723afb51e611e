// Package lazy restores a guest's memory after the guest has started
// (post-copy): the memory is registered with userfaultfd in missing mode,
// the guest runs at once, and each chunk is read from the store,
// decompressed, checked and copied in (UFFDIO_COPY) on the guest's first
// touch of it, while a background reader fills the rest in order. Zero
// chunks are left to the kernel's zero pages.
//
// The chunks are filled by a process of its own, the same executable run
// again with LIBRAHOST_LAZY_FILL set (Main serves it), which is handed the
// userfaultfd over a unix socket when the fill starts; Spawn starts it
// ahead (while the caller checks the checkpoint and compiles the module),
// since a process takes long to start on a loaded machine. It cannot be a goroutine of the guest's process: a
// guest that faults stops inside compiled code holding its P, so a
// stop-the-world (the garbage collector's) waits for that fault to be
// resolved, while a goroutine that would read, decompress and check the
// chunk (Go code, which needs a P and stops for the stop-the-world) waits
// for the stop-the-world: they would wait for each other for ever, and so
// would guests that fault on every P at once. The filler's runtime is its
// own; it needs nothing of the guest's process but the file descriptors
// it was given. It finds each chunk's place when it fills the chunk, in a
// snapshot of the store's index that the guest's process keeps for it
// (ckpt.Store.PinIndex, ckpt.PlaceReader), or where the store named them
// all up front (ckpt.Store.MemorySources), and reads the store's segment
// files there; the values stay until Fill.Done.
//
// The userfaultfd is opened without UFFD_USER_MODE_ONLY, so that the
// kernel's own accesses to guest memory (a write(2) from a guest buffer)
// wait for the fill as the guest's do; that needs CAP_SYS_PTRACE or
// vm.unprivileged_userfaultfd=1. Where it is refused, or the kernel lacks
// userfaultfd, Start returns an error wrapping ErrUnsupported and the
// caller reads the memory before the guest starts, as before.
//
// A chunk that does not read back (a damaged store) is never given to the
// guest: the guest waits on it, and Fill reports the chunk (Err); the
// caller stops the guest and then Close lifts the registration, which lets
// the guest go on reading zeros until its next call into the host ends it.
package lazy
