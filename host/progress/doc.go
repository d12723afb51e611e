// Package progress draws a progress bar on a terminal while something
// takes longer than a second: a build step, a module sent to hosts, a
// checkpoint copied or restored.
//
// A Bar draws only when its writer is a terminal (an *os.File on a
// terminal, or a writer whose IsTerminal method says so), and only once
// Threshold has passed: a short wait, a pipe, a test or a CI log gets no
// bar and not one byte. Pass stderr, never stdout, so that a command's
// output stays clean. With a known total (bytes) the bar shows bytes done,
// rate and time left; with an unknown one (total ≤ 0) a spinner, the bytes
// counted if any, and the time elapsed. Done erases the bar's line.
//
//	bar := progress.New(stderr, "sending app.wasm", int64(len(module)))
//	defer bar.Done()
//	_, err := io.Copy(bar.Count(conn), bytes.NewReader(module))
//
// A wait with no bytes to count is a spinner:
//
//	bar := progress.New(stderr, "wasm-opt --asyncify", 0)
//	err := cmd.Run()
//	bar.Done()
//
// Count wraps a writer so that what is written through it counts, in
// pieces of at most 256 KiB so that one large Write still moves the bar.
// Lines printed while a bar may be drawn go through Above, which erases
// the bar's line first (the bar is drawn again at its next update).
//
// A caller told where it stands rather than what was added uses Report:
// a replica transfer (host/replica's Options.Progress is called with the
// bytes sent and the bytes to send, which may grow once) draws so:
//
//	var bar *progress.Bar
//	opt.Progress = func(done, total int64) {
//		if bar == nil {
//			bar = progress.New(stderr, "replica of epoch 7 to b", total)
//		}
//		bar.Report(done, total)
//	}
//	_, err := replica.Send(rw, store, key, 7, opt)
//	bar.Done() // a nil *Bar does nothing
//
// Restore of a large checkpoint: New(stderr, "restoring epoch N", the
// manifest's stored size), Add as chunks are read, Done before the guest
// starts (or a spinner, total 0, if the size is not at hand).
//
// A Bar is safe for concurrent use; every method of a nil *Bar does
// nothing.
package progress
