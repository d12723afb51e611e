package wasi

import (
	"errors"
	"io/fs"
	"os"
	"strconv"
	"syscall"
)

// Sentinel errors returned by the package's Go API.
var (
	// ErrConfig reports an invalid Config.
	ErrConfig = errors.New("wasi: invalid config")
	// ErrInstantiated reports a second Instantiate of the same System.
	ErrInstantiated = errors.New("wasi: already instantiated")
	// ErrClosed reports use of a closed System.
	ErrClosed = errors.New("wasi: system closed")
	// ErrSnapshot reports a snapshot that cannot be decoded.
	ErrSnapshot = errors.New("wasi: bad snapshot")
	// ErrRestore reports a snapshot that decodes but cannot be applied.
	ErrRestore = errors.New("wasi: restore failed")
	// ErrJournal reports a file journal that cannot be read or written.
	ErrJournal = errors.New("wasi: file journal")
	// ErrNoJournal reports a file checkpoint or rollback without
	// Config.Journal.
	ErrNoJournal = errors.New("wasi: no file journal configured")
	// ErrRollback reports a rollback to an epoch the journal cannot serve.
	ErrRollback = errors.New("wasi: file rollback")
	// ErrNoEvent reports OpenEvent without Config.Event.
	ErrNoEvent = errors.New("wasi: no event configured")
)

// errno is a wasi_snapshot_preview1 error number.
type errno uint16

// The preview1 error numbers used by this package.
const (
	errnoSuccess     errno = 0
	errno2big        errno = 1
	errnoAcces       errno = 2
	errnoAgain       errno = 6
	errnoBadf        errno = 8
	errnoBusy        errno = 10
	errnoExist       errno = 20
	errnoFault       errno = 21
	errnoFbig        errno = 22
	errnoIntr        errno = 27
	errnoInval       errno = 28
	errnoIo          errno = 29
	errnoIsdir       errno = 31
	errnoLoop        errno = 32
	errnoMfile       errno = 33
	errnoMlink       errno = 34
	errnoNametoolong errno = 37
	errnoNoent       errno = 44
	errnoNomem       errno = 48
	errnoNospc       errno = 51
	errnoNosys       errno = 52
	errnoNotdir      errno = 54
	errnoNotempty    errno = 55
	errnoNotsock     errno = 57
	errnoNotsup      errno = 58
	errnoNotty       errno = 59
	errnoOverflow    errno = 61
	errnoPerm        errno = 63
	errnoPipe        errno = 64
	errnoRange       errno = 68
	errnoRofs        errno = 69
	errnoSpipe       errno = 70
	errnoXdev        errno = 75
	errnoNotcapable  errno = 76
)

// errnoError lets internal code return an errno through an error value.
type errnoError errno

func (e errnoError) Error() string { return "wasi: errno " + strconv.Itoa(int(e)) }

// toErrno maps a Go error from the host file system to a preview1 errno.
func toErrno(err error) errno {
	if err == nil {
		return errnoSuccess
	}
	var ee errnoError
	if errors.As(err, &ee) {
		return errno(ee)
	}
	var se syscall.Errno
	if errors.As(err, &se) {
		return sysErrno(se)
	}
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return errnoNoent
	case errors.Is(err, fs.ErrExist):
		return errnoExist
	case errors.Is(err, fs.ErrPermission):
		return errnoPerm
	case errors.Is(err, fs.ErrClosed):
		return errnoBadf
	case errors.Is(err, os.ErrInvalid):
		return errnoInval
	}
	if err.Error() == "path escapes from parent" {
		return errnoPerm
	}
	return errnoIo
}

func sysErrno(e syscall.Errno) errno {
	switch e {
	case 0:
		return errnoSuccess
	case syscall.E2BIG:
		return errno2big
	case syscall.EACCES:
		return errnoAcces
	case syscall.EAGAIN:
		return errnoAgain
	case syscall.EBADF:
		return errnoBadf
	case syscall.EBUSY:
		return errnoBusy
	case syscall.EEXIST:
		return errnoExist
	case syscall.EFAULT:
		return errnoFault
	case syscall.EFBIG:
		return errnoFbig
	case syscall.EINTR:
		return errnoIntr
	case syscall.EINVAL:
		return errnoInval
	case syscall.EIO:
		return errnoIo
	case syscall.EISDIR:
		return errnoIsdir
	case syscall.ELOOP:
		return errnoLoop
	case syscall.EMFILE, syscall.ENFILE:
		return errnoMfile
	case syscall.EMLINK:
		return errnoMlink
	case syscall.ENAMETOOLONG:
		return errnoNametoolong
	case syscall.ENOENT:
		return errnoNoent
	case syscall.ENOMEM:
		return errnoNomem
	case syscall.ENOSPC:
		return errnoNospc
	case syscall.ENOSYS:
		return errnoNosys
	case syscall.ENOTDIR:
		return errnoNotdir
	case syscall.ENOTEMPTY:
		return errnoNotempty
	case syscall.ENOTSUP:
		return errnoNotsup
	case syscall.ENOTTY:
		return errnoNotty
	case syscall.EOVERFLOW:
		return errnoOverflow
	case syscall.EPERM:
		return errnoPerm
	case syscall.EPIPE:
		return errnoPipe
	case syscall.ERANGE:
		return errnoRange
	case syscall.EROFS:
		return errnoRofs
	case syscall.ESPIPE:
		return errnoSpipe
	case syscall.EXDEV:
		return errnoXdev
	}
	return errnoIo
}
