//go:build wasip1

package libra

//go:wasmimport libra rank
func hostRank() int32

//go:wasmimport libra size
func hostSize() int32

//go:wasmimport libra pending
func hostPending() int64

//go:wasmimport libra yield
func hostYield()

//go:wasmimport libra checkpoint
func hostCheckpoint()

// hostEventFD returns the fd of the host's event for this guest (see
// run_wasip1.go), or -1.
//
//go:wasmimport libra event_fd
func hostEventFD() int32

func rank() int32 { return hostRank() }
func size() int32 { return hostSize() }
func yield()      { hostYield() }

//go:wasmimport libra send
func hostSend(dst, tag int32, ptr *byte, n int32) int32

//go:wasmimport libra recv
func hostRecv(src, tag int32, ptr *byte, n int32, info *[3]int32) int32

// What libra.recv reports in info of the message it returns (or of the one
// that did not fit).
const (
	infoSrc = 0
	infoTag = 1
	infoLen = 2
)

// Results of libra.send and libra.recv.
const (
	errnoOK    = 0
	errnoBig   = 1  // the message does not fit: info.Len says how large it is
	errnoAgain = 6  // nothing to receive yet, or the send window is full
	errnoInval = 28 // no such rank
)
