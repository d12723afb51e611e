package dirty

// Copy-on-write capture. The tracker's userfaultfd is opened without
// UFFD_FEATURE_WP_ASYNC: a write to a protected page then stops the
// writing thread until a handler lifts the protection. At a capture the
// guest, paused, only has its memory protected (Freeze: the pages written
// since the last capture when tracking is on, all of it otherwise) and goes
// on at once. The handler thread (cow_serve_linux.go) copies the memory a
// block at a time into a shadow mapping, and lifts each block's
// protection once it is copied; a write to a block not yet copied has the
// handler copy that block first. The capture reads the shadow. There are
// two shadows (cowSlots): the next capture may freeze while the one
// before is still being copied and read; a block pending in both is
// copied into both at once.
//
// Blocks are huge pages (CopyBlock): lifting the protection of a whole
// huge page keeps it huge, and one fault copies 2 MiB, so a guest that
// rewrites its memory right after a capture takes at most one fault per
// 2 MiB. While writes are tracked a block stays protected after the copy
// and a fault lifts only its TrackUnit, so the next capture knows what
// was written.
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
)
