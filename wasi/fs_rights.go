package wasi

// Rights (preview1 witx, typenames "rights"). Every import that the witx
// names a right for checks it (fdEntry.need), fd_fdstat_set_rights only
// narrows them, path_open bounds the rights of a new fd by the
// directory's inheriting rights, and they are checkpoint state (Snapshot).

// Rights, as reported by fd_fdstat_get.
const (
	rightFdDatasync uint64 = 1 << iota
	rightFdRead
	rightFdSeek
	rightFdFdstatSetFlags
	rightFdSync
	rightFdTell
	rightFdWrite
	rightFdAdvise
	rightFdAllocate
	rightPathCreateDirectory
	rightPathCreateFile
	rightPathLinkSource
	rightPathLinkTarget
	rightPathOpen
	rightFdReaddir
	rightPathReadlink
	rightPathRenameSource
	rightPathRenameTarget
	rightPathFilestatGet
	rightPathFilestatSetSize
	rightPathFilestatSetTimes
	rightFdFilestatGet
	rightFdFilestatSetSize
	rightFdFilestatSetTimes
	rightPathSymlink
	rightPathRemoveDirectory
	rightPathUnlinkFile
	rightPollFdReadwrite
	rightSockShutdown
	rightSockAccept
)

const fileRightsBase = rightFdDatasync | rightFdRead | rightFdSeek | rightFdFdstatSetFlags |
	rightFdSync | rightFdTell | rightFdWrite | rightFdAdvise | rightFdAllocate |
	rightFdFilestatGet | rightFdFilestatSetSize | rightFdFilestatSetTimes | rightPollFdReadwrite

const dirRightsBase = rightFdDatasync | rightFdFdstatSetFlags | rightFdSync |
	rightPathCreateDirectory | rightPathCreateFile | rightPathLinkSource | rightPathLinkTarget |
	rightPathOpen | rightFdReaddir | rightPathReadlink | rightPathRenameSource |
	rightPathRenameTarget | rightPathFilestatGet | rightPathFilestatSetSize |
	rightPathFilestatSetTimes | rightFdFilestatGet | rightFdFilestatSetTimes |
	rightPathSymlink | rightPathRemoveDirectory | rightPathUnlinkFile

// stdioRights are those of a character device that is not a terminal
// (wasi-libc's isatty wants seek and tell absent).
const stdioRights = fileRightsBase

// fileWriteRights are the rights of a file that only an fd open for
// writing can use (wasi-libc's and Go's split of rights by access mode).
const fileWriteRights = rightFdWrite | rightFdDatasync | rightFdAllocate | rightFdFilestatSetSize

// need returns ENOTCAPABLE unless e holds every right in r. Each import
// checks the rights the preview1 witx names for it after the checks of the
// fd's kind, so an operation that does not apply to the kind keeps its
// POSIX errno (EISDIR, ENOTDIR, ESPIPE, EBADF) and ENOTCAPABLE means a
// right the fd lacks, or one the guest dropped with fd_fdstat_set_rights.
func (e *fdEntry) need(r uint64) errno {
	if e.rightsBase&r != r {
		return errnoNotcapable
	}
	return errnoSuccess
}

// openRequest is what path_open asks for.
type openRequest struct {
	base, inheriting uint64
	oflags, fdflags  uint16
}

// dirNeeds are the rights path_open needs on the directory dir: path_open,
// path_create_file to create, and fd_sync (or fd_datasync, for dsync
// alone) to open for synchronized I/O. Truncation is checked by truncates.
func (r openRequest) dirNeeds(dir *fdEntry) uint64 {
	need := rightPathOpen
	if r.oflags&oflagCreat != 0 {
		need |= rightPathCreateFile
	}
	switch {
	case r.fdflags&(fdflagRsync|fdflagSync) != 0:
		need |= rightFdSync
	case r.fdflags&fdflagDsync != 0 && dir.rightsBase&rightFdSync == 0:
		need |= rightFdDatasync
	}
	return need
}

// truncates checks the right to open with O_TRUNC: path_filestat_set_size
// on the directory, as the spec says, or, beyond it, the rights to write
// and truncate in the fd opened (base), which could truncate the file
// itself at once. Go opens an os.Root read-only, without
// path_filestat_set_size, and creates files below it with O_TRUNC.
func (r openRequest) truncates(dir *fdEntry, base uint64) errno {
	const own = rightFdWrite | rightFdFilestatSetSize
	if r.oflags&oflagTrunc == 0 || dir.rightsBase&rightPathFilestatSetSize != 0 || base&own == own {
		return errnoSuccess
	}
	return errnoNotcapable
}

// writes reports whether the request opens for writing: it asks for
// fd_write, or asks for no rights at all and creates, truncates or appends
// (the access wazero, which ignores rights, gives).
func (r openRequest) writes() bool {
	if r.base == 0 {
		return r.oflags&(oflagCreat|oflagTrunc) != 0 || r.fdflags&fdflagAppend != 0
	}
	return r.base&rightFdWrite != 0
}

// rights returns the rights of the fd the request opens below dir, a
// directory or not. Rights that do not apply to the kind of file are
// dropped, as the spec allows (Go and Rust ask for directory rights on
// files); asking for one that applies but is not among dir's inheriting
// rights is ENOTCAPABLE. A request with no base rights gets those of its
// kind within dir's inheriting rights, without the write rights of a file
// unless it writes; with no inheriting rights either, it inherits dir's.
func (r openRequest) rights(dir *fdEntry, isDir bool) (base, inheriting uint64, en errno) {
	kind := fileRightsBase
	if isDir {
		kind = dirRightsBase
	}
	inheriting = r.inheriting & dir.rightsInheriting
	if r.base == 0 {
		base = kind
		if !isDir && !r.writes() {
			base &^= fileWriteRights
		}
		if r.inheriting == 0 {
			inheriting = dir.rightsInheriting
		}
		return base & dir.rightsInheriting, inheriting, errnoSuccess
	}
	base = r.base & kind
	if base&^dir.rightsInheriting != 0 {
		return 0, 0, errnoNotcapable
	}
	return base, inheriting, errnoSuccess
}
