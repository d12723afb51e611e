package dirty

import "time"

// Copy-on-write capture. The tracker's userfaultfd is opened without
// UFFD_FEATURE_WP_ASYNC: a write to a protected page then stops the
// writing thread until a handler lifts the protection. At a capture the
// guest, paused, only has its memory protected (Freeze: the pages written
// since the last capture when tracking is on, all of it otherwise) and goes
// on at once. The capture's reader (Snapshot.Read) copies each chunk it
// needs out of guest memory itself, where it cannot change while it is
// protected; once it has read every chunk it needs of a block, the
// protection is lifted. Only a block that the guest writes before the
// reader has read it is copied first, by the handler thread
// (cow_serve_linux.go), into a shadow block from a pool, and the reader
// reads that copy instead; the shadow block goes back to the pool once
// read. So host memory is the guest's plus the pool.
//
// The pool holds PoolBlocks blocks (64 MiB), shared by a tracker's
// snapshots, and reused. The handler never waits for the reader: with the
// pool full it copies beyond it (PoolStats.Overflow), and gives that
// memory back once the block is read. What keeps the pool to its size is
// the guest: at each of its preemption calls (libra.preempt, in every
// loop) it waits, while the pool is full, until the reader has read
// blocks the handler copied, which it reads first (Snapshot.Next,
// Tracker.Throttle). A copy that fills the pool zeroes the guest's
// preemption counter before the guest goes on (Tracker.ZeroWhenFull), so
// that the guest makes that call at its next loop head rather than after
// up to 2^20 instructions, time enough to fault on hundreds of blocks. A
// thread must not wait in a write fault for the reader instead: the
// thread holds its P, and the Go runtime's stop-the-world would wait for
// it while the reader, Go code, is stopped.

// Per snapshot (slot) and block, the states and who moves them:
//
//	free     -> pending   Freeze, the guest paused and the handler held
//	pending  -> copied    the handler, on a write fault, once it copied
//	                      the block into a shadow block (CAS)
//	pending  -> readMem   the reader, once it read every chunk it needs
//	                      of the block from guest memory (CAS)
//	copied   -> readCopy  the reader, once it read them from the shadow
//	readMem  -> free      the handler (reap): lifts the protection if no
//	                      other snapshot has the block pending and writes
//	                      are not tracked there
//	readCopy -> free      the handler (reap): the shadow block back to
//	                      the pool
//
// The protection of a block pending in some snapshot is lifted only by
// the handler after its pending -> copied move (the copy holds the
// freeze's bytes), by a reap once no snapshot has it pending, or by a
// tracker call for blocks no snapshot has pending (unprotect). A reader
// copying a chunk of a pending block out of guest memory thus reads the
// freeze's bytes unless the handler copied the block meanwhile; it
// checks, after its copy, that the block is still pending (a CAS from
// pending to pending, a full barrier), and if not reads the chunk again
// from the shadow. The reader never holds the handler back: the handler
// may copy and unprotect a block while it is read.
//
// Blocks are huge pages (CopyBlock): lifting the protection of a whole
// huge page keeps it huge, and one fault copies 2 MiB, so a guest that
// rewrites its memory right after a capture takes at most one fault per
// 2 MiB. While writes are tracked a block stays protected after it is
// read and a fault lifts only its TrackUnit, so the next capture knows
// what was written.
//
// The kernel's own writes into guest memory (a read(2) into a guest
// buffer) are not faults it can wait on: the userfaultfd is opened
// UFFD_USER_MODE_ONLY (no privilege needed) and such a write fails with
// EFAULT. Release lifts the protection of a range first.
const (
	// CopyBlock is the unit the handler copies: a huge page.
	CopyBlock = 2 << 20
	// TrackUnit is what a fault unprotects while writes are tracked: the
	// store's chunk size by default.
	TrackUnit = 64 << 10
	// PoolBlocks is how many shadow blocks a tracker's snapshots hold
	// before the guest waits for their reader (64 MiB).
	PoolBlocks = 32
)

// PoolStats describes a copy-on-write tracker's shadow blocks.
type PoolStats struct {
	Blocks    int           // the pool's size, in blocks of CopyBlock bytes
	InUse     int           // blocks held now, overflow included
	Peak      int           // the most held at once since New
	Overflow  uint64        // blocks copied beyond the pool since New
	Throttled time.Duration // the guest's waits for room in the pool since New (Throttle)
	Faulted   time.Duration // the handler's time on the guest's write faults since New: the faulting thread stood meanwhile
}
