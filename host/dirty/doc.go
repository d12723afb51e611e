// Package dirty tracks which pages of a memory mapping are written, so
// that a checkpoint hashes only those instead of the whole guest memory.
//
// It uses Linux's asynchronous userfaultfd write protection
// (UFFD_FEATURE_WP_ASYNC, Linux 6.7): the mapping is registered for write
// protection and protected; the first write to a protected page takes a
// minor fault that the kernel resolves by itself, with no handler thread,
// leaving the page marked written. The PAGEMAP_SCAN ioctl of
// /proc/self/pagemap then lists the written pages and protects them again
// in one pass. Writes by the kernel on the process's behalf (a read(2)
// into the mapping) are tracked too. The file descriptor is opened with
// UFFD_USER_MODE_ONLY, which needs no privilege: no fault is ever handled
// in user space.
//
// The cost moves from the checkpoint's pause to the run: each page's first
// write after a scan takes a fault (2–60 µs here, bench/RESULTS.md), and
// the first write to a protected huge page splits it into small pages,
// which are slower to use. So a program that rewrites most of its memory
// between checkpoints is better off hashing everything: Tracker.StartProbe
// and EndProbe measure the writes to a small sample of the memory before
// the caller tracks all of it; Tracker.SetLimit has a guard turn tracking
// off while the program runs, once it wrote more than the limit; and
// Tracker.Disarm turns tracking off. All have what they split collapsed
// back into huge pages (MADV_COLLAPSE) by a goroutine of the tracker's
// own, so that the copies it takes stay out of the caller's pause.
// Tracker.Costs tells what a fault and a page's read cost on this
// machine, measured at New.
//
// NewCOW makes a tracker for copy-on-write captures: its write faults
// wait for a handler thread instead, so Tracker.Freeze can protect the
// memory at a capture and let the guest run on while the capture reads
// it, block by block, where it is (Snapshot.Read); a write to a block not
// yet read has the handler copy it first into a bounded pool of shadow
// blocks, or wait, with the pool full, until the reader has read it
// (cow.go). Two snapshots may be under way at once, so a capture need not
// wait for the one before to be read. Writes are tracked as with New. The
// kernel's writes into protected memory fail (EFAULT) rather than wait:
// Release lifts the protection of a buffer before a read(2) into it.
// cow_serve_linux.go tells why the handler cannot deadlock with the Go
// runtime.
//
// Where the kernel lacks the features, New and NewCOW return an error
// wrapping ErrUnsupported and the caller hashes everything, as before.
package dirty
