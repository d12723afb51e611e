package host

import (
	"errors"
	"fmt"
)

// Stage writes a state into the memory of a worker that has not run, ahead
// of its Restore (with State.InPlace), so that a restore waits only for
// what changed since: a migration's target stages each pre-copy round as
// it arrives (host/job). The memory grows to memSize (it never shrinks);
// the first Stage zeroes what the module's data segments wrote, and write
// gets the whole memory to write the state, or what changed, into.
func (w *Worker) Stage(memSize uint64, write func(mem []byte) error) error {
	if w.kind == KindPlain {
		return ErrNotCheckpointable
	}
	mem := w.mod.Memory()
	if mem == nil {
		return errors.New("host: guest has no memory")
	}
	if memSize%65536 != 0 || memSize < uint64(mem.Size()) {
		return fmt.Errorf("host: staged memory size %d does not fit the guest's %d bytes", memSize, mem.Size())
	}
	initial := mem.Size()
	if delta := uint32((memSize - uint64(mem.Size())) / 65536); delta > 0 {
		if _, ok := mem.Grow(delta); !ok {
			return fmt.Errorf("host: cannot grow guest memory to %d bytes", memSize)
		}
	}
	buf, _ := mem.Read(0, mem.Size())
	if !w.staged {
		clear(buf[:initial])
		w.staged = true
	}
	return write(buf)
}
