package ckpt

import "sync/atomic"

// failpoint, when set (by tests, or SetFailpoints), is called before each
// durable write with the write's name; a non-nil result makes that write
// fail. It may be replaced while writes run.
//
// Names: "commit:batch" (an early batch of chunks), "segment:write" and
// "segment:sync" (appending chunk values to a segment, a capture's or a
// replica's, and syncing them),
// "commit:chunks", "commit:manifest", "commit:gc", "commit:tx", "free:tx"
// (chunk values a commit left unreferenced), "delete:tx", "deleteafter:tx",
// "segment:punch" (punching freed values out of an older segment: a
// failure leaves them allocated, as zeros or not, for Open to punch).
var failpoint atomic.Pointer[func(name string) error]

// setFailpoint arms f (nil disarms).
func setFailpoint(f func(name string) error) {
	if f == nil {
		failpoint.Store(nil)
		return
	}
	failpoint.Store(&f)
}

// Failpoint runs the failpoint name, armed by SetFailpoints, for a
// driver's own points (host/node's "migrate:receive").
func Failpoint(name string) error { return fail(name) }

func fail(name string) error {
	if f := failpoint.Load(); f != nil {
		return (*f)(name)
	}
	return nil
}
