package host

import (
	"testing"

	"github.com/librahost/librahost/wasi"
)

// No periodic checkpoint is asked for while one is being taken: it would
// pause the guest again as soon as it goes on, so that after a long pause
// the guest ran for nothing between two checkpoints.
func TestTickSkipsCapture(t *testing.T) {
	w := &Worker{kind: KindGo, interrupt: make(chan struct{}, 1), pokeWake: make(chan struct{}, 1), event: &wasi.Event{}}
	s := &Session{worker: w}
	s.capturing = true
	s.tick()
	if w.Pending() {
		t.Fatal("a checkpoint was asked for during a capture")
	}
	s.capturing = false
	s.tick()
	if !w.Pending() {
		t.Fatal("no checkpoint asked for between captures")
	}
}
