package progress

import (
	"io"
	"os"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"
)

// Threshold is how long a wait goes without a bar.
const Threshold = time.Second

// redraw is how often a shown bar is drawn again (its spinner, elapsed
// time and rate move while nothing is added).
const redraw = 150 * time.Millisecond

// Bar is the progress of one wait.
type Bar struct {
	total int64

	mu    sync.Mutex
	pb    *progressbar.ProgressBar // nil: not a terminal, nothing is drawn
	gate  gate                     // pb's writer: shut until Threshold
	n     int64
	timer *time.Timer
	done  chan struct{} // closed by Done
	ended bool
}

// gate passes writes on once open; before, it drops them (pb renders as
// bytes are added, from the start, so that its clock and rate count from
// New).
type gate struct {
	w    io.Writer
	open bool
}

func (g *gate) Write(p []byte) (int, error) {
	if !g.open {
		return len(p), nil
	}
	return g.w.Write(p)
}

// New starts the progress of a wait labelled label, of total bytes (≤ 0:
// unknown), drawn on w once Threshold has passed if w is a terminal.
func New(w io.Writer, label string, total int64) *Bar {
	b := &Bar{total: total, done: make(chan struct{})}
	if !IsTerminal(w) {
		return b
	}
	b.gate.w = w
	opts := []progressbar.Option{
		progressbar.OptionSetWriter(&b.gate),
		progressbar.OptionSetDescription(label),
		progressbar.OptionSetSpinnerChangeInterval(0), // redrawn here, under b.mu
		progressbar.OptionSetWidth(30),
		progressbar.OptionSetElapsedTime(true),
		progressbar.OptionShowBytes(true),
		progressbar.OptionClearOnFinish(),
	}
	max := int64(-1)
	if total > 0 {
		max = total
		opts = append(opts, progressbar.OptionSetPredictTime(true))
	}
	b.pb = progressbar.NewOptions64(max, opts...)
	b.pb.StartWithoutRender()
	b.timer = time.AfterFunc(Threshold, b.show)
	return b
}

// IsTerminal reports whether w is a terminal: an *os.File on one, or a
// writer whose IsTerminal method returns true.
func IsTerminal(w io.Writer) bool {
	switch t := w.(type) {
	case interface{ IsTerminal() bool }:
		return t.IsTerminal()
	case *os.File:
		return t != nil && term.IsTerminal(int(t.Fd()))
	}
	return false
}

// show draws the bar for the first time, then again every redraw until
// Done.
func (b *Bar) show() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.ended {
		return
	}
	b.gate.open = true
	b.pb.RenderBlank()
	go b.redrawLoop()
}

func (b *Bar) redrawLoop() {
	t := time.NewTicker(redraw)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			b.mu.Lock()
			if !b.ended {
				b.pb.RenderBlank()
			}
			b.mu.Unlock()
		case <-b.done:
			return
		}
	}
}

// Add counts n more bytes done.
func (b *Bar) Add(n int64) {
	if b == nil || n <= 0 {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.n += n
	if b.pb == nil || b.ended || (b.total > 0 && b.n > b.total) {
		return // past the announced total the bar stays full until Done
	}
	b.pb.Add64(n)
}

// Report sets how far the wait is: done bytes of total, for a caller told
// where it stands rather than what was added (host/replica's
// Options.Progress). A known total that grows is followed.
func (b *Bar) Report(done, total int64) {
	if b == nil {
		return
	}
	b.mu.Lock()
	if b.total > 0 && total > b.total {
		b.total = total
		if b.pb != nil && !b.ended {
			b.pb.ChangeMax64(total)
		}
	}
	add := done - b.n
	b.mu.Unlock()
	b.Add(add)
}

// Done ends the wait: the bar, if it was drawn, is erased. Later calls do
// nothing.
func (b *Bar) Done() {
	if b == nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.ended {
		return
	}
	b.ended = true
	close(b.done)
	if b.pb != nil {
		b.timer.Stop()
		if b.gate.open {
			b.pb.Clear()
		}
		b.pb.Exit()
	}
}
