package jobrec

import "errors"

var (
	// ErrInUse: another process (another host daemon on the same --data)
	// has the records open.
	ErrInUse = errors.New("jobrec: records in use")
	// ErrNoRecord: no record of the job asked for.
	ErrNoRecord = errors.New("jobrec: no record of the job")
	// ErrOutputGone: the job's record is kept but its output is not.
	ErrOutputGone = errors.New("jobrec: the job's output is gone")
	// ErrFinished: an append to the output of a job that has ended.
	ErrFinished = errors.New("jobrec: output log finished")
	// ErrDamaged: a record or an output frame does not decode.
	ErrDamaged = errors.New("jobrec: damaged")
)
