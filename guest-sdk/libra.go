package libra

// Any matches every source or every tag in Recv.
const Any = -1

// Status values returned by the libra_run export to the host.
const (
	statusFinished = 0 // main.main returned
	statusPaused   = 1 // a checkpoint is pending: the host captures, then calls libra_run again
	statusWaiting  = 2 // the program waits for a message: the host calls libra_run when one arrives
)

// Rank returns this worker's rank, 0 ≤ Rank() < Size().
func Rank() int { return int(rank()) }

// Size returns the number of workers in the job.
func Size() int { return int(size()) }

// Yield is a capture point: a checkpoint that is pending is taken here.
// Go programs never need it (the host preempts them); it is kept for
// symmetry with the C SDK, where long pure-compute loops call libra_yield.
func Yield() { yield() }

// Checkpoint asks the host for a checkpoint now and returns once the
// program's state has been captured.
func Checkpoint() { checkpoint() }
