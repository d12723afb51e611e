package web

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"sync"
	"time"
)

// keepAlive is how often an idle /events stream gets a comment, so that
// proxies and the browser keep it open.
const keepAlive = 15 * time.Second

// hub reads the status while at least one page follows /events, and hands
// each page the newest report when it changes: one reader for every page.
type hub struct {
	read  func(ctx context.Context) []byte
	every time.Duration

	mu   sync.Mutex
	subs map[chan []byte]struct{}
	last []byte
	wake chan struct{} // a first subscriber came
}

func newHub(read func(ctx context.Context) []byte, every time.Duration) *hub {
	return &hub{read: read, every: every, subs: map[chan []byte]struct{}{}, wake: make(chan struct{}, 1)}
}

// subscribe returns a channel of reports, starting with the newest one.
func (h *hub) subscribe(ctx context.Context) chan []byte {
	c := make(chan []byte, 1)
	first := h.read(ctx)
	c <- first
	h.mu.Lock()
	h.subs[c] = struct{}{}
	if len(h.subs) == 1 {
		h.last = first
		select {
		case h.wake <- struct{}{}:
		default:
		}
	}
	h.mu.Unlock()
	return c
}

func (h *hub) unsubscribe(c chan []byte) {
	h.mu.Lock()
	delete(h.subs, c)
	h.mu.Unlock()
}

// run reads the status every h.every while there are subscribers.
func (h *hub) run(ctx context.Context) {
	t := time.NewTicker(h.every)
	defer t.Stop()
	for {
		h.mu.Lock()
		n := len(h.subs)
		h.mu.Unlock()
		if n == 0 {
			select {
			case <-h.wake:
			case <-ctx.Done():
				return
			}
		}
		select {
		case <-t.C:
		case <-ctx.Done():
			return
		}
		b := h.read(ctx)
		h.mu.Lock()
		if !bytes.Equal(b, h.last) {
			h.last = b
			for c := range h.subs {
				select { // a page that has not taken the last one gets this instead
				case <-c:
				default:
				}
				c <- b
			}
		}
		h.mu.Unlock()
	}
}

// events streams reports to a page as server-sent events named status.
func (s *Server) events(w http.ResponseWriter, r *http.Request) {
	rc := http.NewResponseController(w)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	c := s.hub.subscribe(r.Context())
	defer s.hub.unsubscribe(c)
	if _, err := fmt.Fprint(w, "retry: 2000\n\n"); err != nil {
		return
	}
	ping := time.NewTicker(keepAlive)
	defer ping.Stop()
	for {
		var err error
		select {
		case b := <-c:
			_, err = fmt.Fprintf(w, "event: status\ndata: %s\n\n", b)
		case <-ping.C:
			_, err = fmt.Fprint(w, ": keep-alive\n\n")
		case <-r.Context().Done():
			return
		}
		if err == nil {
			err = rc.Flush()
		}
		if err != nil {
			return
		}
	}
}
