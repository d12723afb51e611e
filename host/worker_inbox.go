package host

import "github.com/librahost/librahost/transport"

// Inbox returns what a job's checkpoint keeps of the worker's side of its
// inbox: the count of arrivals the guest's waits compare against, and the
// message a too-small receive buffer held back (nil if none). Call it
// while the worker is paused.
func (w *Worker) Inbox() (changes uint64, held *transport.Message) {
	return w.changes.Load(), w.held
}

// RestoreInbox sets them back before Run, after Restore. The count is
// set one past the one saved: the guest's waiting goroutines compare it
// with what they saw before the checkpoint, and a change wakes them to
// look again.
func (w *Worker) RestoreInbox(changes uint64, held *transport.Message) {
	w.held = held
	w.changes.Store(changes + 1)
}
